"""The first NeMo RL correction: match the carried text against the template text, not token ids.

Generation 1 of contract §7.5 (NeMo RL PR #1110): if the carried ids do not already prefix the render,
decode both and look for a window of template tokens whose text equals the carried text. Any
string-level change (a re-templated tool call, reasoning re-wrapped) makes it give up with a 400.
"""
from reference_impl.mutants._tamper import carried_prefix, template_render
from reference_impl.server.protocol import bad_request
from reference_impl.server.service import Service

REPRODUCES = "contract §7.5 gen 1 (P08, P11)"


class Mutant(Service):
    def plan_prompt(self, req):
        template = template_render(self, req)
        prefix = carried_prefix(self, req)
        if not prefix or template[:len(prefix)] == prefix:
            return template
        decode = lambda ids: self.tokenizer.decode(ids, skip_special_tokens=False)  # noqa: E731
        carried = decode(prefix)
        if decode(template).startswith(carried):
            for k in range(1, len(template) + 1):
                if decode(template[:k]) == carried:
                    return [*prefix, *template[k:]]
        raise bad_request("Found a non-monotonically increasing trajectory that is not caused by a token merge",
                          "messages")
