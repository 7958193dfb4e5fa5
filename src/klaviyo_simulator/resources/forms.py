"""Sign-up forms and their versions (`/api/forms`, `/api/forms/{id}/form-versions`).

Forms hold 0 (a form being built), 1 or a few versions (A/B tests). `advance` with
`forms_updated`/`forms_created` and `form_versions_updated`/`form_versions_created` touches and
creates them; a new version joins its form's `form-versions` relationship.
"""

from __future__ import annotations

from typing import Any

from klaviyo_simulator.model import Change, Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, mix, pick, short_id

FORM_NAMES = ["Welcome popup", "Footer sign-up", "Exit intent", "Back in stock", "Spin to win", "SMS opt-in"]
FORM_TYPES = ["popup", "popup", "flyout", "embed", "banner", "full_page"]
VERSION_COUNTS = [1, 2, 1, 0, 3, 1]


class Forms(RowKind):
    types = ("form", "form-version")
    cursors = {
        "forms": ("form", "updated_at", "created_at"),
        "form_versions": ("form-version", "updated_at", "created_at"),
    }

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        forms: list[Row] = []
        versions: list[Row] = []
        for i in range(world.sizes.forms):
            created = between(seed, 320, i, start, now - 86_400 * 2)
            n_versions = VERSION_COUNTS[i % len(VERSION_COUNTS)]
            form_id = short_id(seed, 321, i)
            ids = []
            form_type = pick(FORM_TYPES, seed, 322, i)
            latest = created
            for k in range(n_versions):
                n = i * 16 + k
                v_created = between(seed, 323, n, created, now - 86_400)
                v_updated = between(seed, 324, n, v_created, now)
                latest = max(latest, v_updated)
                version_id = str(1_000_000 + mix(seed, 325, n) % 9_000_000)
                ids.append(version_id)
                attributes: dict[str, Any] = {
                    "form_type": form_type,
                    "variation_name": f"Variation {'ABC'[k]}",
                    "status": "live" if frac(seed, 326, n) < 0.7 else "draft",
                    "created_at": iso_seconds(v_created),
                    "updated_at": iso_seconds(v_updated),
                }
                if n_versions > 1:
                    attributes["ab_test"] = {"variation_name": f"Variation {'ABC'[k]}"}
                versions.append(Row("form-version", version_id, attributes, {"form": ("form", form_id)}))
            forms.append(
                Row(
                    "form",
                    form_id,
                    {
                        "name": f"{pick(FORM_NAMES, seed, 327, i)} {i + 1}",
                        "status": "live" if n_versions and frac(seed, 328, i) < 0.75 else "draft",
                        "ab_test": n_versions > 1,
                        "created_at": iso_seconds(created),
                        "updated_at": iso_seconds(between(seed, 329, i, created, now)),
                    },
                    {"form-versions": ("form-version", ids)},
                )
            )
        return forms + versions

    def new_id(self, rtype: str, change: Change, k: int) -> str:
        if rtype == "form-version":
            return str(10_000_000 + mix(change.salt, 330, k) % 90_000_000)
        return short_id(change.salt, 331, k)

    def clone_relationships(self, template: Row, new_id: str, change: Change, k: int) -> dict[str, Any]:
        if template.type == "form":
            return {"form-versions": ("form-version", [])}  # a new form starts without versions
        form = self.store.get("form", template.related_ids("form")[0])
        assert form is not None
        form.relationships["form-versions"] = ("form-version", [*form.related_ids("form-versions"), new_id])
        return dict(template.relationships)
