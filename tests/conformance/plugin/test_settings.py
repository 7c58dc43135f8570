"""The one settings table: validation as a pure function (no pytest run), and the two front ends generated from
it — the plugin's pytest options and ``gym-conformance run`` — checked against each other by introspection."""
import argparse
from pathlib import Path

import pytest

from conformance.plugin import _settings
from conformance.plugin._settings import OPTIONS, Settings, SettingsError, pytest_args, resolve
from fixtures import fixture_path

pytest_plugins = ["pytester"]
URL = "http://127.0.0.1:8000/v1"
CHATML = str(fixture_path("tiny-chatml"))


# --- resolve: raw values in, typed settings or one line out ----------------------------------------------

def test_defaults():
    s = resolve({"endpoints": [URL]})
    assert s == Settings(endpoints=(URL,))
    assert (s.api_key, s.timeout, s.report_dir, s.reasoning_parser, s.strict) == (
        "dummy_key", 60.0, Path("reports"), True, False)
    assert s.chat_template_kwargs == {} and s.checks == () and s.gym_version is None


def test_typed_values_from_the_command_line():
    s = resolve({"endpoints": [URL, "https://other/v1"], "model": "m", "api_key": "k", "tokenizer": CHATML,
                 "rescore_model": CHATML, "refit_url": "http://h/weights/reload", "strict": True,
                 "report_dir": "out", "checks": ["e3", "M1"], "timeout": "2.5",
                 "chat_template_kwargs": '{"enable_thinking": false}', "gym_version": "0.4.0",
                 "reasoning_parser": "off", "hypothesis_profile": "deep", "hypothesis_seed": "-7"})
    assert s.endpoints == (URL, "https://other/v1") and s.checks == ("E3", "M1") and s.timeout == 2.5
    assert s.report_dir == Path("out") and s.chat_template_kwargs == {"enable_thinking": False}
    assert (s.strict, s.reasoning_parser, s.gym_version, s.hypothesis_seed) == (True, False, "0.4.0", -7)
    assert (s.load, s.load_duration, s.load_threshold) == (None, None, 2000)
    s = resolve({"endpoints": [URL], "load": "128", "load_duration": "600", "load_threshold": "64", "checks": ["r10"]})
    assert (s.load, s.load_duration, s.load_threshold, s.checks) == (128, 600.0, 64, ("R10",))


def test_precedence_command_line_then_ini_then_environment_then_default():
    ini = {"conformance_model": "from-ini", "conformance_strict": True, "conformance_timeout": "5",
           "conformance_endpoints": ["http://ini/v1"], "conformance_checks": ["E4"]}
    env = {"OPENAI_API_KEY": "from-env"}
    s = resolve({"endpoints": [], "model": "from-flag", "checks": []}, ini, env)
    assert (s.endpoints, s.model, s.strict, s.timeout, s.checks, s.api_key) == (
        ("http://ini/v1",), "from-flag", True, 5.0, ("E4",), "from-env")
    assert resolve({"endpoints": [URL], "api_key": "from-flag"}, {}, env).api_key == "from-flag"
    assert resolve({"endpoints": [URL]}, {"conformance_strict": "false"}).strict is False
    assert resolve({"endpoints": [URL], "hypothesis_seed": "not-a-number"}).hypothesis_seed is None


@pytest.mark.parametrize("values, ini, env, message", [
    ({"endpoints": ["localhost:8000/v1"]}, {}, {}, "--endpoint 'localhost:8000/v1' is not an http(s) URL"),
    ({"endpoints": []}, {"conformance_endpoints": ["ftp://x"]}, {}, "ini conformance_endpoints 'ftp://x' is not"),
    ({"checks": ["X99"]}, {}, {}, "--check names unknown check id(s) X99; implemented: "),
    ({"checks": ["E12"]}, {}, {}, "--check names not implemented check id(s) E12"),
    ({"timeout": "-1"}, {}, {}, "--conformance-timeout must be a positive number of seconds, got '-1'"),
    ({"timeout": "nan"}, {}, {}, "--conformance-timeout must be a positive number"),
    ({}, {"conformance_timeout": "soon"}, {}, "ini conformance_timeout must be a positive number of seconds"),
    ({"chat_template_kwargs": "[1]"}, {}, {}, "--chat-template-kwargs must be a JSON object"),
    ({"chat_template_kwargs": "{"}, {}, {}, "--chat-template-kwargs must be a JSON object: Expecting"),
    ({"gym_version": "0.1"}, {}, {}, "--gym-version '0.1' is not a verified NeMo Gym version; verified: 0.4.0"),
    ({}, {"conformance_gym_reasoning_parser": "maybe"}, {}, "ini conformance_gym_reasoning_parser must be on or off"),
    ({}, {"conformance_strict": "sometimes"}, {}, "ini conformance_strict must be true or false"),
    ({"tokenizer": "/no/such/tok"}, {}, {"HF_HUB_OFFLINE": "1"}, "does not exist and the hub is offline"),
    ({"rescore_model": "/no/such/model"}, {}, {}, "--rescore-model '/no/such/model' is not a local model directory"),
    ({"refit_url": "http://h/reload"}, {}, {}, "--refit-url needs --rescore-model"),
    ({"refit_url": "h/reload", "rescore_model": CHATML}, {}, {}, "--refit-url 'h/reload' is not an http(s) URL"),
    ({"load": "0"}, {}, {}, "--load must be a positive whole number, got '0'"),
    ({"load": "many"}, {}, {}, "--load must be a positive whole number, got 'many'"),
    ({}, {"conformance_load_threshold": "-5"}, {}, "ini conformance_load_threshold must be a positive whole number"),
    ({"load": "8", "load_duration": "0"}, {}, {}, "--load-duration must be a positive number of seconds"),
    ({"load_duration": "60"}, {}, {}, "--load-duration needs --load N"),
])
def test_bad_values_give_one_line_naming_their_source(values, ini, env, message):
    with pytest.raises(SettingsError) as info:
        resolve({"endpoints": [URL], **values}, ini, env)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_missing_tokenizer_is_left_to_the_hub_when_online():
    assert resolve({"endpoints": [URL], "tokenizer": "Qwen/Qwen3-0.6B"}, {}, {}).tokenizer == "Qwen/Qwen3-0.6B"


# --- one table, two front ends ----------------------------------------------------------------------------

class _Recorder:
    """Stands in for pytest's parser: records what the plugin's pytest_addoption registers."""

    def __init__(self):
        self.options, self.ini = {}, {}

    def getgroup(self, name, description=""):
        assert name == "gym-conformance"
        return self

    def addoption(self, *flags, **attrs):
        self.options[flags] = attrs

    def addini(self, name, help, type=None, default=None):
        self.ini[name] = {"help": help, "type": type}


def _plugin_options():
    from conformance.plugin import pytest_addoption
    recorder = _Recorder()
    pytest_addoption(recorder)
    return recorder


def _run_parser():
    from gym_conformance.cli import command_parser
    return command_parser("run")


def _actions(parser):
    return {flag: action for action in parser._actions for flag in action.option_strings}


def test_every_plugin_option_exists_on_run_with_the_same_name_and_meaning():
    plugin, run = _plugin_options(), _actions(_run_parser())
    assert plugin.options, "the plugin registers its options"
    for flags, attrs in plugin.options.items():
        for flag in flags:
            assert flag in run, f"{flag} is a plugin option but not a gym-conformance run option"
            action = run[flag]
            assert action.dest == attrs["dest"], flag
            assert action.help == attrs["help"], flag
            assert list(action.choices or []) == list(attrs.get("choices") or []), flag
            assert action.metavar == attrs.get("metavar"), flag
            kind = {"append": argparse._AppendAction, "store_true": argparse._StoreTrueAction,
                    "store": argparse._StoreAction}[attrs["action"]]
            assert isinstance(action, kind), flag


def test_every_ini_key_belongs_to_an_option_that_run_has():
    plugin, run = _plugin_options(), _actions(_run_parser())
    by_ini = {o.ini: o for o in OPTIONS if o.ini}
    assert set(plugin.ini) == set(by_ini)
    for key, opt in by_ini.items():
        assert opt.flag in run and plugin.ini[key]["help"] == run[opt.flag].help, key


def test_the_readme_options_keep_their_flags_and_ini_keys():
    flags = {o.flag: o.ini for o in OPTIONS}
    assert flags == {
        "--endpoint": "conformance_endpoints", "--rollouts": "conformance_rollouts",
        "--train-batches": "conformance_train_batches", "--metrics": "conformance_metrics",
        "--benchmark": "conformance_benchmark", "--loop-advantage": "conformance_loop_advantage",
        "--loop-truncation": "conformance_loop_truncation", "--model": "conformance_model", "--api-key": None,
        "--tokenizer": "conformance_tokenizer", "--rescore-model": "conformance_rescore_model",
        "--refit-url": "conformance_refit_url", "--conformance-strict": "conformance_strict",
        "--conformance-report": "conformance_report", "--check": "conformance_checks",
        "--conformance-timeout": "conformance_timeout", "--conformance-deadline": "conformance_deadline",
        "--conformance-max-response-bytes": "conformance_max_response_bytes",
        "--load": "conformance_load", "--load-duration": "conformance_load_duration",
        "--load-threshold": "conformance_load_threshold",
        "--chat-template-kwargs": "conformance_chat_template_kwargs",
        "--gym-version": "conformance_gym_version", "--gym-reasoning-parser": "conformance_gym_reasoning_parser",
        "--hypothesis-profile": None, "--hypothesis-seed": None, "-k": None, "-n": None, "-v": None}
    assert _actions(_run_parser())["--strict"].dest == "conformance_strict"
    assert _actions(_run_parser())["--report"].dest == "conformance_report"


SAMPLES = {"--endpoint": URL, "--rollouts": "/r.jsonl", "--train-batches": "/b.jsonl", "--metrics": "/m.jsonl",
           "--benchmark": "arith", "--loop-advantage": "loo",
           "--loop-truncation": "drop", "--model": "tiny", "--api-key": "secret", "--tokenizer": "/t", "--rescore-model": "/w",
           "--refit-url": "http://e/reload", "--conformance-report": "out", "--check": "M3",
           "--conformance-timeout": "7.5", "--conformance-deadline": "90", "--conformance-max-response-bytes": "4096",
           "--load": "16", "--load-duration": "30", "--load-threshold": "16",
           "--chat-template-kwargs": "{}", "--gym-version": "0.4.0",
           "--gym-reasoning-parser": "off", "--hypothesis-profile": "deep", "--hypothesis-seed": "3",
           "-k": "E3", "-n": "2"}


def test_run_hands_every_option_to_pytest_under_the_plugins_own_flag(pytester):
    # Parse with run's parser, turn into pytest arguments, parse with pytest (its own options, hypothesis' and
    # xdist's too): every option arrives with the value given.
    argv = [x for flag, value in SAMPLES.items() for x in (flag, value)] + ["--strict", "-v"]
    args = _run_parser().parse_args(argv)
    forwarded = pytest_args(args)
    assert "--strict" not in forwarded and "--conformance-strict" in forwarded
    config = pytester.parseconfig(*forwarded)
    for opt in OPTIONS:
        got = config.getoption(opt.dest)
        if opt.kind == "flag":
            assert got, opt.flag
        elif opt.kind == "list":
            assert got == [SAMPLES[opt.flag]], opt.flag
        else:
            assert str(got) == SAMPLES[opt.flag], opt.flag


def test_pytest_help_shows_the_plugins_options_with_defaults(pytester):
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    assert "NeMo Gym conformance" in out and "--conformance-timeout=SECONDS" in out
    assert "(default: $OPENAI_API_KEY, else dummy_key)" in " ".join(out.split())
    assert "conformance_checks" in out


def test_settings_model_covers_every_settings_option():
    fields = set(Settings.__dataclass_fields__)
    assert {o.name for o in OPTIONS if o.owner in _settings.SETTINGS_OWNERS} == fields
