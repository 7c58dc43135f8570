"""Realistic sample reports: stock vLLM on tiny-qwen3 re-tokenizing a non-canonical generation (M3).

A plain module (not conftest) so tests can import the builders by a name no other test folder uses.
"""
from __future__ import annotations

# Real Qwen3 ids: <|im_start|>=151644, <|im_end|>=151645, "\n"=198, "user"=872, "assistant"=77091;
# " Skinny" sampled as [26951, 3834] (" Sk" + "inny") re-tokenizes to the canonical [94224].
IM_START, IM_END, NL, USER, ASSISTANT = 151644, 151645, 198, 872, 77091
FILLER = [40, 1184, 264, 829, 369, 264, 8251, 13, 22406, 3410, 432, 304, 825, 3409, 13] * 4  # 60 ids
P_1 = [IM_START, USER, NL, *FILLER, IM_END, NL, IM_START, ASSISTANT, NL]
G_1 = [26951, 3834, IM_END]
FIRST_DIFF = len(P_1)
P_2 = [*P_1, 94224, IM_END, NL, IM_START, USER, NL, 9454, IM_END, NL, IM_START, ASSISTANT, NL]

VERDICT = (f"turn 2 prompt re-tokenized the previous generation: [26951, 3834] became [94224] "
           f"at position {FIRST_DIFF}")


def retokenization_result() -> dict:
    request = {
        "model": "tiny-qwen3",
        "messages": [
            {"role": "user", "content": "Name a <script>alert(1)</script> word."},
            {"role": "assistant", "content": " Skinny", "prompt_token_ids": P_1,
             "generation_token_ids": G_1, "generation_log_probs": [-0.31, -0.02, -0.5]},
            {"role": "user", "content": "Again"},
        ],
        "logprobs": True, "top_logprobs": None, "n": 1, "temperature": 1.0, "top_p": 1.0,
    }
    return {
        "check_id": "M3", "name": "multiturn/retokenization", "tier": "MUST",
        "requirement": "A non-canonical previous generation survives verbatim in the next prompt and in /tokenize.",
        "outcome": "fail", "nodeid": "conformance/suite/test_multiturn.py::test_retokenization[ep0]",
        "duration_s": 0.84, "message": VERDICT, "variant": None,
        "evidence": {
            "verdict": VERDICT, "endpoint": "http://127.0.0.1:8001/v1",
            "request": request,
            "response": {"id": "chatcmpl-1", "choices": [{"index": 0, "finish_reason": "stop",
                                                          "message": {"role": "assistant", "content": "Yes<|im_end|>",
                                                                      "prompt_token_ids": P_2}}]},
            "curl": ("curl -sS http://127.0.0.1:8001/v1/chat/completions -H 'Content-Type: application/json' "
                     "-d @request.json"),
            "token_diff": {"expected": P_1 + G_1, "actual": P_2, "first_diff": FIRST_DIFF,
                           "expected_label": "P_1 + G_1", "actual_label": "P_2",
                           "expected_context": " one word.<|im_end|>\n<|im_start|>assistant\n Skinny<|im_end|>",
                           "actual_context": " one word.<|im_end|>\n<|im_start|>assistant\n Skinny<|im_end|>\n"},
            "metrics": {"prompt_tokens": len(P_2), "matched_prefix": FIRST_DIFF},
            "hypothesis": {"seed": 1234, "example": {"turns": 2, "word": " Skinny"}},
            "notes": ["decoded text is identical; only the token split differs"],
        },
    }


def simple_result(check_id: str, name: str, outcome: str, tier: str = "MUST", message: str | None = None) -> dict:
    return {"check_id": check_id, "name": name, "tier": tier, "requirement": f"{name} holds.",
            "outcome": outcome, "nodeid": f"conformance/suite/test_x.py::test_{check_id.lower()}",
            "duration_s": 0.01, "message": message, "evidence": None, "variant": None}


def counts_for(results: list[dict]) -> dict:
    counts = dict.fromkeys(("pass", "fail", "non_strict", "info", "skipped", "error"), 0)
    for result in results:
        counts[result["outcome"]] += 1
    return counts


def build_report(results: list[dict]) -> dict:
    counts = counts_for(results)
    verdict = "fail" if counts["fail"] else "error" if counts["error"] else "pass"
    return {
        "schema": "gym-conformance/report/1", "tool": {"name": "gym-conformance", "version": "0.1.0"},
        "started_at": "2026-11-23T19:00:00+00:00", "finished_at": "2026-11-23T19:00:42.5+00:00",
        "duration_s": 42.5,
        "target": {"endpoints": ["http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"], "model": "tiny-qwen3",
                   "tokenizer": "/work/main/.cache/fixtures/tiny-qwen3", "strict": False},
        "environment": {"python": "3.11.9", "platform": "Linux-6.8-x86_64", "cpu_flags": ["avx2", "avx512f", "fma"],
                        "hypothesis_profile": "ci"},
        "summary": {"verdict": verdict, "counts": counts},
        "results": results,
    }


def stock_vllm_results() -> list[dict]:
    return [
        simple_result("E1", "endpoint/models", "pass"),
        simple_result("E4", "tokens/bundle-lengths", "pass"),
        simple_result("E6", "tokens/usage-counts", "non_strict", "SHOULD",
                      "usage.prompt_tokens 71 != len(prompt_token_ids) 72"),
        simple_result("E9", "endpoint/tokenize", "skipped", "MUST", "no /tokenize route"),
        simple_result("E10", "endpoint/context-overflow", "pass"),
        retokenization_result(),
        simple_result("M24", "logprobs/teacher-forced", "info", "SHOULD", "token_mult_prob_error 1.003"),
        simple_result("T1", "template/prefix-preserving", "pass", "SHOULD"),
    ]


# ---------------------------------------------------------------- a tiny DOM over html.parser

class Node:
    def __init__(self, tag: str, attrs: dict, parent: "Node | None" = None) -> None:
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    @property
    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    def text(self) -> str:
        return "".join(child if isinstance(child, str) else child.text() for child in self.children)

    def iter(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs) -> list["Node"]:
        return [node for node in self.iter()
                if (tag is None or node.tag == tag) and (cls is None or cls in node.classes)
                and all(node.attrs.get(key.replace("_", "-")) == value for key, value in attrs.items())]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs) -> "Node":
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag} class={cls} {attrs}>"
        return found[0]


_VOID = {"meta", "br", "hr", "img", "input", "link", "col", "source", "wbr"}


def parse_html(text: str) -> Node:
    """Parse into a tree; asserts every non-void element is closed in order (well-formed output)."""
    from html.parser import HTMLParser

    root = Node("#root", {})

    class Builder(HTMLParser):
        current = root

        def handle_starttag(self, tag, attrs):
            node = Node(tag, dict(attrs), self.current)
            self.current.children.append(node)
            if tag not in _VOID:
                self.current = node

        def handle_endtag(self, tag):
            assert self.current.tag == tag, f"</{tag}> closes <{self.current.tag}>"
            self.current = self.current.parent

        def handle_data(self, data):
            self.current.children.append(data)

    builder = Builder(convert_charrefs=True)
    builder.feed(text)
    builder.close()
    assert builder.current is root, f"unclosed <{builder.current.tag}>"
    return root
