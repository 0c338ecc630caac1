"""The warning signs of the source playbooks as data: each kind a `risk` signal may report, what it
means, where it comes from, and the reaction a policy takes when it does not say otherwise
(domain/risk_signs.py applies them; inputs and policies are validated against this list).

Reactions: `accelerate` (later ladder steps come forward), `hold_and_verify` (collection waits and
a person checks what happened before anything else is done), `route_to_person` (a task for a
person; the ladder goes on), `stop` (collection stops; a person takes over), `ignore` (recorded
only). A policy's `risk.reactions` overrides any of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Reaction = Literal["accelerate", "hold_and_verify", "route_to_person", "stop", "ignore"]
REACTIONS: tuple[str, ...] = ("accelerate", "hold_and_verify", "route_to_person", "stop", "ignore")


@dataclass(frozen=True)
class Sign:
    kind: str
    reaction: Reaction
    about: str
    source: str


CATALOGUE: dict[str, Sign] = {s.kind: s for s in (
    # The six kinds the product started with (their reactions in every published policy are explicit).
    Sign("telematics_tamper", "accelerate", "the telematics unit was tampered with or removed", "000 3, 003"),
    Sign("gps_offline", "hold_and_verify", "no position from the machine for days", "000 4.6"),
    Sign("out_of_region", "hold_and_verify", "the machine works outside the region agreed in the contract "
         "(it may be a job the customer did not tell us about: verified, not punished)", "000 3.7, 4.6"),
    Sign("phone_dead", "route_to_person", "the phone is off, refused or the number changed", "000 3.3"),
    Sign("bankruptcy", "stop", "insolvency proceedings opened", "001 篇1 (3)"),
    Sign("death", "stop", "the debtor died: the estate is handled by a person", "001 篇1 (3)"),
    # Seed 000 §3 "重视贷后管理过程中的风险信号" (14 signs) and seed 003.
    Sign("no_reaction_to_legal_notice", "accelerate", "no reaction after a lawyer's letter or court papers",
         "000 3.4"),
    Sign("site_stopped", "route_to_person", "the site was sealed, the mine stopped, work halted", "000 3.6"),
    Sign("site_conflict", "route_to_person", "unlawful work or fights at the customer's site", "000 3.6"),
    Sign("equipment_seized", "accelerate", "the customer's other machines were seized by other creditors or "
         "a court", "000 3.8"),
    Sign("equipment_pledged", "route_to_person", "the machine or other assets pledged for other loans", "000 3.8"),
    Sign("wages_unpaid", "accelerate", "drivers' wages or fuel bills unpaid", "000 3.9"),
    Sign("partners_changed", "hold_and_verify", "the customer's partners or owners changed", "000 3.10"),
    Sign("insurance_lapsed", "route_to_person", "insurance lapsed or in dispute", "000 3.11"),
    Sign("accident_or_defect", "route_to_person", "a serious accident or a quality problem with the machine",
         "000 3.12, 003"),
    Sign("legal_violation", "route_to_person", "serious violations or unlawful conduct", "000 3.13"),
    Sign("owner_health", "route_to_person", "the owner's (or close family's) health: a person decides, never "
         "an automatic escalation", "000 3.14"),
)}

# The kinds a `risk` signal could carry before the catalogue: runs recorded then refuse the others.
LEGACY_KINDS = frozenset({"telematics_tamper", "gps_offline", "out_of_region", "phone_dead", "bankruptcy", "death"})
