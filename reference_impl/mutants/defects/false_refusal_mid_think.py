"""Refuses its own generation when a <think> block sits mid-text: sent back verbatim or as Gym re-arranges it.

The reference before issue 14: its edit detector compared the message text (think blocks taken out) with the
decoded ids (think blocks kept), so a block anywhere but the start looked like an edit and the rollout was
lost with a 400 "non-monotonic history", about 1 in 100 four-turn rollouts under the real NeMo Gym.
"""
from reference_impl.server.correction import _THINK, _content_text, _norm, choose_prefix
from reference_impl.server.protocol import bad_request
from reference_impl.server.service import Service

REPRODUCES = "false refusal of a mid-text think block (issue 14, M28)"


class Mutant(Service):
    def plan_prompt(self, req):
        choice = None if req.required_prefix_token_ids is not None else choose_prefix(req.messages, None)
        if choice is not None:
            msg = req.messages[choice.boundary]
            ids = msg.generation_token_ids
            decoded = [_norm(self.renderer.decode(ids)),
                       _norm(self.renderer.tokenizer.decode(ids, skip_special_tokens=False))]
            text = _norm(_THINK.sub("", _content_text(msg.content)))
            if text and not any(text in d for d in decoded):
                raise bad_request(f"non-monotonic history: messages[{choice.boundary}] carries token ids whose "
                                  "text does not contain its content; the message was edited after generation",
                                  "messages")
        return super().plan_prompt(req)
