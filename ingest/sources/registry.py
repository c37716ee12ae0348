"""The official BEIR dataset list: names, download URLs and the published md5 of each zip.

Values come from the "Available Datasets" table of the BEIR README (beir-cellar/beir, as shipped
in the `beir` 2.2.0 package metadata). Four datasets in that table are not publicly downloadable;
they are listed with `url=None` so a request for them gets a precise answer instead of a 404.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

BEIR_BASE_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"
BEIR_REPRODUCE_URL = "https://github.com/beir-cellar/beir/blob/main/examples/dataset"


@dataclass(frozen=True, slots=True)
class BeirDataset:
    """One entry of the BEIR table.

    Attributes:
        name: The BEIR name (`scifact`, `webis-touche2020`, ...), also the zip stem.
        md5: The published md5 of the zip, or None for datasets that are not public.
        splits: The qrels splits the dataset ships.
        subsets: Sub-corpora inside the zip (only `cqadupstack`), selected as `name:subset`.
    """

    name: str
    md5: str | None
    splits: tuple[str, ...]
    subsets: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        """Whether the zip can be downloaded from the BEIR server."""
        return self.md5 is not None

    @property
    def url(self) -> str | None:
        """The official download URL, or None when the dataset is not public."""
        return f"{BEIR_BASE_URL}/{self.name}.zip" if self.public else None


_CQADUPSTACK_SUBSETS = (
    "android",
    "english",
    "gaming",
    "gis",
    "mathematica",
    "physics",
    "programmers",
    "stats",
    "tex",
    "unix",
    "webmasters",
    "wordpress",
)

BEIR_DATASETS: dict[str, BeirDataset] = {
    d.name: d
    for d in (
        BeirDataset("msmarco", "444067daf65d982533ea17ebd59501e4", ("train", "dev", "test")),
        BeirDataset("trec-covid", "ce62140cb23feb9becf6270d0d1fe6d1", ("test",)),
        BeirDataset("nfcorpus", "a89dba18a62ef92f7d323ec890a0d38d", ("train", "dev", "test")),
        BeirDataset("bioasq", None, ("train", "test")),
        BeirDataset("nq", "d4d3d2e48787a744b6f6e691ff534307", ("train", "test")),
        BeirDataset("hotpotqa", "f412724f78b0d91183a0e86805e16114", ("train", "dev", "test")),
        BeirDataset("fiqa", "17918ed23cd04fb15047f73e6c3bd9d9", ("train", "dev", "test")),
        BeirDataset("signal1m", None, ("test",)),
        BeirDataset("trec-news", None, ("test",)),
        BeirDataset("robust04", None, ("test",)),
        BeirDataset("arguana", "8ad3e3c2a5867cdced806d6503f29b99", ("test",)),
        BeirDataset("webis-touche2020", "46f650ba5a527fc69e0a6521c5a23563", ("test",)),
        BeirDataset("cqadupstack", "4e41456d7df8ee7760a7f866133bda78", ("test",), _CQADUPSTACK_SUBSETS),
        BeirDataset("quora", "18fb154900ba42a600f84b839c173167", ("dev", "test")),
        BeirDataset("dbpedia-entity", "c2a39eb420a3164af735795df012ac2c", ("dev", "test")),
        BeirDataset("scidocs", "38121350fc3a4d2f48850f6aff52e4a9", ("test",)),
        BeirDataset("fever", "5a818580227bfb4b35bb6fa46d9b6c03", ("train", "dev", "test")),
        BeirDataset("climate-fever", "8b66f0a9126c521bae2bde127b4dc99d", ("test",)),
        BeirDataset("scifact", "5f7d1de60b170fc8027bb7898e2efca1", ("train", "test")),
    )
}


def get_beir_dataset(name: str) -> BeirDataset | None:
    """Return the registry entry for a BEIR name (case-insensitive), or None if it is not one."""
    return BEIR_DATASETS.get(name.lower())


def suggest_names(name: str, n: int = 3) -> list[str]:
    """Return up to `n` registry names close to `name` (difflib), best first."""
    return difflib.get_close_matches(name.lower(), list(BEIR_DATASETS), n=n, cutoff=0.5)
