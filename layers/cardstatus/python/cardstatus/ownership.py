"""Card ownership groups (README "Card ownership"; SPEC §3 "Cards belong to partners").

A card is owned by the partner of its earliest event. Rows from a partner outside the owner's
group are rejected naming the owner. Partners are in one group when PARTNER_CONFIG says so:

- `"group": "<name>"`: every partner with the same group name is in that group;
- `"handover_to": ["p2", ...]`: this partner and each listed partner are in one group (a
  handover goes both ways: the courier that takes over a card may report it, and the
  partner that handed it over may still report it).

Groups are the connected components of those links, so `a` handing over to `b` and `b` being
in group `g` with `c` puts `a`, `b` and `c` in one group. A partner that is not configured is
a group of its own. Pure functions: no database, no I/O.
"""

from __future__ import annotations

from cardstatus.config import Settings


def owner_groups(cfg: Settings) -> dict[str, frozenset[str]]:
    """Every configured partner (and every partner named by a handover) → its whole group."""
    links: dict[str, set[str]] = {}

    def link(a: str, b: str) -> None:
        links.setdefault(a, set()).add(b)
        links.setdefault(b, set()).add(a)

    by_group: dict[str, list[str]] = {}
    for name, partner in cfg.partners.items():
        links.setdefault(name, set())
        if partner.group is not None:
            by_group.setdefault(partner.group, []).append(name)
        for other in partner.handover_to:
            link(name, other)
    for members in by_group.values():
        for other in members[1:]:
            link(members[0], other)
    groups: dict[str, frozenset[str]] = {}
    for start in links:
        if start in groups:
            continue
        seen, todo = {start}, [start]
        while todo:
            for nxt in links[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        component = frozenset(seen)
        for member in component:
            groups[member] = component
    return groups


def owner_group(partner: str, cfg: Settings) -> frozenset[str]:
    """The partners whose cards `partner` may report (itself included)."""
    return owner_groups(cfg).get(partner, frozenset({partner}))


def same_owner_group(a: str, b: str, cfg: Settings) -> bool:
    """Whether partners a and b share cards (the same partner, or one group)."""
    return a == b or b in owner_group(a, cfg)


def foreign_card_reason(card_id: str, owner: str) -> str:
    """The reason of a row rejected because another partner owns its card."""
    return (
        f"card {card_id} is handled by partner {owner}; rows from another partner are not "
        "merged (configure a group or handover_to in PARTNER_CONFIG if they share cards)"
    )
