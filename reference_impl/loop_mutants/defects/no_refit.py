"""Weights sent to the server once, at the start: every later step samples from the starting policy while
the trainer updates its own copy (and stamps the version it believes the server has)."""
KILLED_BY = "R8"
TASK = "lookup"


def patches(run):
    original = run.loop.refit
    state = {"version": None}

    def refit(model, urls, folder, http, probe_ids, tolerance):
        if state["version"] is None:
            seconds, state["version"] = original(model, urls, folder, http, probe_ids, tolerance)
            return seconds, state["version"]
        state["version"] += 1  # the trainer's own count: what it would be had the reload happened
        return 0.0, state["version"]

    return {"refit": refit}
