"""The policy-gradient loss with its sign flipped: the update pushes down what was rewarded. Nothing in the
dumps is wrong (rollouts, masks, old log probs and advantages are all right); only the reward curve shows it."""
KILLED_BY = "B4"
TASK = "arith"


def patches(run):
    original = run.loop.grpo_loss

    def grpo_loss(logp, batch, **kw):
        loss, metrics = original(logp, batch, **kw)
        return -loss, metrics

    return {"grpo_loss": grpo_loss}
