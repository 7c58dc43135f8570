"""Re-renders assistant tool calls from their parsed arguments (sorted keys, no spaces) instead of the ids.

The correction is applied to every other turn; only assistant messages with tool calls lose their
carried ids, so their text is re-serialised by the template (D07: tool_calls rebuilt during rollout).
"""
from reference_impl.server.correction import build_prompt
from reference_impl.server.protocol import TOKEN_FIELDS
from reference_impl.server.service import Service

REPRODUCES = "D07, D21 (P08)"
FIXTURE = "tiny-chatml-drift-tool-json-resorted"


class Mutant(Service):
    def _plan(self, req):
        messages = [m.model_copy(update={f: None for f in TOKEN_FIELDS}) if m.tool_calls else m
                    for m in req.messages]
        plan = build_prompt(self.renderer, messages, req.tools, req.chat_template_kwargs,
                            req.required_prefix_token_ids, vocab_size=self.engine.vocab_size,
                            stop_ids=self.engine.stop_ids)
        return plan.prompt_token_ids
