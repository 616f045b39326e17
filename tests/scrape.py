"""Reading `/metrics` the way Prometheus does: with prometheus-client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape, parsed: `value(name, **labels)` finds a sample; every line must parse."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in self.families.values()
            for s in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        assert key in self.samples, f"{name}{labels} not in the scrape"
        return self.samples[key]

    def get(self, name: str, default: float | None = None, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())), default)
