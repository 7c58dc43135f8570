"""Advantages normalised over the whole batch instead of within each prompt's group."""
KILLED_BY = "L2"
TASK = "lookup"


def patches(run):
    original = run.loop.group_advantages

    def group_advantages(rewards, groups, *, estimator="grpo", **kw):
        return original(rewards, [0] * len(rewards), estimator=estimator, **kw)  # one group: the batch

    return {"group_advantages": group_advantages}
