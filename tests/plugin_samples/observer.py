"""Observes engine events; records them in EVENTS."""

from backpack import hookimpl

EVENTS = []


@hookimpl
def interactions_recorded(users, items, weights):
    EVENTS.append(("recorded", list(users), list(items), list(weights)))


@hookimpl
def fit_finished(algorithm, seconds):
    EVENTS.append(("fit", algorithm, seconds))
