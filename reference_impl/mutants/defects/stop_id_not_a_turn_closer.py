"""Counts turns by its EOS alone, so a turn the model closed with a secondary stop id breaks the call after next.

The reference before the fix of issue 14's last remainder: Qwen3's generation config also stops on
``<|endoftext|>``; such a turn is spliced with that id kept in place of ``<|im_end|>`` (no second end token),
so every later carried prefix holds one EOS fewer than the template renders and was refused as non-monotonic
(HTTP 400 "close 5 turns but render 6"), about one call in a thousand under the real NeMo Gym. The zoo's
model stops on EOS alone, so this mutant also takes the tokenizer's pad token (``<|endoftext|>``) as a stop
id, as a Qwen3 checkpoint's generation config does.
"""
from reference_impl.server.correction import build_prompt, choose_prefix
from reference_impl.server.protocol import bad_request
from reference_impl.server.service import Service
from reference_impl.server.splice import expected_prefix_eos_count

REPRODUCES = "turns counted by EOS only, a secondary stop id ignored (issue 14, M28)"


def _stops_on(token: int | None, messages) -> bool:
    """Emulate a model that stops on ``token``: it ends some carried generation and sits inside none (a model
    that stops on a token never samples it mid-text; one that samples it there does not stop on it)."""
    gens = [m.generation_token_ids for m in messages if m.has_bundle and m.generation_token_ids]
    return token is not None and any(g[-1] == token for g in gens) and not any(token in g[:-1] for g in gens)


class Mutant(Service):
    def plan_prompt(self, req):
        pad = self.tokenizer.pad_token_id
        stop_ids = self.engine.stop_ids | ({pad} if _stops_on(pad, req.messages) else set())
        choice = None if req.required_prefix_token_ids is not None else choose_prefix(req.messages, None)
        if choice is not None:
            through = req.messages[:choice.boundary + 1]
            prefix = self.renderer.render(through, req.tools, req.chat_template_kwargs, add_generation_prompt=False)
            have, want = expected_prefix_eos_count(choice.model_prefix, prefix, self.renderer.eos_id)
            if have != want:
                raise bad_request(f"non-monotonic history: the ids carried on {choice.source} close {have} turns "
                                  f"but the messages through it render {want}", "messages")
        return build_prompt(self.renderer, req.messages, req.tools, req.chat_template_kwargs,
                            req.required_prefix_token_ids, vocab_size=self.engine.vocab_size, stop_ids=stop_ids)
