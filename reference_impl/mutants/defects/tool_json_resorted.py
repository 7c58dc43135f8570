"""Re-renders assistant tool calls from their parsed arguments (sorted keys, no spaces) instead of the ids.

The correction is applied to every other turn: assistant messages with tool calls lose their carried
ids, the prefix comes from the last message still carrying them, and the template re-serialises the
tool calls after it (D07: tool_calls rebuilt during rollout).
"""
from reference_impl.server.correction import build_prompt, check_vocab
from reference_impl.server.protocol import TOKEN_FIELDS, bad_request
from reference_impl.server.service import Service
from reference_impl.server.splice import SpliceError, splice

REPRODUCES = "D07, D21 (P08)"
FIXTURE = "tiny-chatml-drift-tool-json-resorted"


class Mutant(Service):
    def plan_prompt(self, req):
        messages = [m.model_copy(update={f: None for f in TOKEN_FIELDS}) if m.tool_calls else m
                    for m in req.messages]
        carriers = [i for i, m in enumerate(messages) if m.has_bundle]
        if req.required_prefix_token_ids is not None or not carriers:
            return build_prompt(self.renderer, messages, req.tools, req.chat_template_kwargs,
                                req.required_prefix_token_ids, vocab_size=self.engine.vocab_size,
                                stop_ids=self.engine.stop_ids)
        msg = messages[carriers[-1]]
        prefix = [*msg.prompt_token_ids, *msg.generation_token_ids]
        check_vocab(prefix, self.engine.vocab_size, "messages")
        render = self.renderer.render
        try:
            return splice(prefix, render(messages[:carriers[-1] + 1], req.tools, req.chat_template_kwargs,
                                         add_generation_prompt=False),
                          render(messages, req.tools, req.chat_template_kwargs, add_generation_prompt=True),
                          self.renderer.eos_id, stop_ids=self.engine.stop_ids)
        except SpliceError as exc:
            raise bad_request(f"cannot splice: {exc}", "messages") from exc
