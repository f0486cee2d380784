"""Campaigns in the database: joining one at filing, the card's figures, what the record says.

The rules of "near-identical" are in bot.similarity; this module applies them inside the caller's
unit of work, so a record's campaign commits or rolls back with the record itself.

Only a record that stands alone or started a campaign stores its band keys (`campaign_band`);
members do not. So a band lookup returns at most one row per distinct template however big its
campaign grows, and every member is compared with the first record's text, never with another
member's: a campaign cannot drift, one small edit at a time, into evidence of a different kind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import bindparam, func, text, update
from sqlmodel import Session, col, select

from bot import similarity
from bot.outbox_kinds import SLACK_UPDATE
from bot.review import UNDECIDED
from storage.filing import insert_plain, select_plain
from storage.models import CampaignBand, OutboxItem, Submission
from storage.outbox import enqueue

CANDIDATES = 8  # the records sharing most band keys with a new one that are verified exactly
CARD_MEMBERS = 3  # members whose differing lines the campaign card shows
OPEN_CHOICES = 100  # Slack's limit on a static_select's options


@dataclass(frozen=True)
class Joined:
    first_id: int
    first_reference: str
    size: int


def _lock_bands(s: Session, keys: Sequence[int]) -> None:
    """PostgreSQL: holds a transaction lock per band key, taken in key order (so two filings
    cannot deadlock), until commit. Two near-identical records filed at once share a band key, so
    the second waits, then sees the first's committed keys and joins it instead of starting a
    second campaign. (Filing also locks the reference counter's row today; this does not rely on
    that.) SQLite serialises writers with BEGIN IMMEDIATE and needs nothing."""
    if s.get_bind().dialect.name != "postgresql":
        return
    stmt = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")
    s.execute(stmt, {"keys": sorted(set(keys))})


def candidates(s: Session, keys: Sequence[int], *, exclude: int | None = None) -> list[int]:
    """Ids of the records sharing the most band keys with `keys`: one indexed lookup per key."""
    if not keys:
        return []
    hits = func.count()
    stmt = (
        select(CampaignBand.submission_id, hits)
        .where(col(CampaignBand.band_key).in_(bindparam("keys", expanding=True)))
        .group_by(col(CampaignBand.submission_id))
        .order_by(hits.desc(), col(CampaignBand.submission_id))
        .limit(CANDIDATES)
    )
    rows = s.execute(stmt, {"keys": list(set(keys))}).all()
    return [int(r[0]) for r in rows if r[0] != exclude]


@lru_cache(maxsize=64)
def _shingles_of(body: str | None) -> frozenset[int]:
    """A candidate's shingles: the same few first records are the candidates of a whole campaign's
    members, so their shingles are kept rather than worked out again for each member."""
    return similarity.shingles(body)


Keys = tuple[str | None, frozenset[int], list[int]]  # (the text, its shingles, its band keys)


def keys_for(body: str | None) -> Keys:
    """What `match` needs of a text, worked out before the filing transaction (it is CPU work)."""
    return (body, *similarity.keys_of(body))


def keys_for_many(bodies: Sequence[str | None]) -> list[Keys]:
    """keys_for of each, worked out together (similarity.keys_of_many)."""
    return [(body, *keys) for body, keys in zip(bodies, similarity.keys_of_many(bodies), strict=True)]


def match(s: Session, sub: Submission, *, precomputed: Keys | None = None) -> Joined | None:
    """Joins a just-filed evidence record to the campaign of a near-identical earlier one, or
    stores its band keys so later ones can join it. None when it stands alone. `precomputed`:
    keys_for(the record's body), used if that is still the body."""
    assert sub.id is not None
    if precomputed is not None and precomputed[0] == sub.body:
        shingles, keys = precomputed[1], precomputed[2]
    else:
        shingles, keys = similarity.keys_of(sub.body)
    if not keys:
        return None  # too short to be a template
    _lock_bands(s, keys)
    for cid in candidates(s, keys, exclude=sub.id):
        cand = s.get(Submission, cid)
        if cand is None or cand.id is None or cand.kind != "evidence":
            continue
        if similarity.same_campaign(shingles, _shingles_of(cand.body)):
            return _join(s, sub, first=cand)
    s.add_all([CampaignBand(band_key=k, submission_id=sub.id) for k in sorted(set(keys))])
    return None


def _join(s: Session, sub: Submission, *, first: Submission) -> Joined:
    assert first.id is not None and sub.id is not None
    # One UPDATE counts the member in and marks the first record: it takes the first record's row
    # lock, so members filed at once on PostgreSQL are counted one after the other.
    stmt = (
        update(Submission)
        .where(col(Submission.id) == first.id)
        .values(campaign_id=first.id, campaign_size=func.coalesce(Submission.campaign_size, 1) + 1)
        .returning(col(Submission.campaign_size))
    )
    size = int(s.execute(stmt).scalar_one())
    s.execute(update(Submission).where(col(Submission.id) == sub.id).values(campaign_id=first.id))
    s.refresh(first)
    sub.campaign_id = first.id
    return Joined(first.id, first.reference or "", size)


@dataclass(frozen=True)
class Earlier:
    """What matching needs of a record filed before the batch: plain values that do not change
    while it is filed (so nothing the session would write back, and safe to keep for the next
    batch of the same transaction)."""

    kind: str
    body: str | None
    reference: str | None


@dataclass(frozen=True)
class Member:
    """A record of the batch joins the campaign whose first record is this one."""

    first_id: int
    first_reference: str


class BatchMatch:
    """`match` for the records of one batch, filed one after another in one transaction, with
    their ids taken but their rows not yet written (bot.filing): the same decisions, with the
    band keys of the whole batch locked and read in one query. `match` each record in filing
    order; once the batch's records are inserted, `write` stores what was decided. `known`:
    earlier records already read in this transaction (write adds the batch's own)."""

    def __init__(self, s: Session, keys: Iterable[int], known: dict[int, Earlier | None] | None = None) -> None:
        self.s = s
        self.fetched: set[int] = set()
        # band key -> ids holding it: the rows stored before this batch, then the batch's own.
        self.bands: dict[int, list[int]] = {}
        self.batch: dict[int, Submission] = {}  # the batch's records, not yet written
        self.earlier = known if known is not None else {}  # earlier records looked at (None: gone)
        self.new_bands: list[tuple[int, int]] = []  # (band_key, submission_id)
        self.grown: dict[int, int] = {}  # earlier first record -> members joined in this batch
        self._fetch(keys)

    def _fetch(self, keys: Iterable[int]) -> None:
        """Locks (PostgreSQL) and reads the stored rows of band keys not read yet."""
        wanted = sorted(set(keys) - self.fetched)
        if not wanted:
            return
        _lock_bands(self.s, wanted)
        self.fetched.update(wanted)
        for k, sid in select_plain(self.s, "SELECT band_key, submission_id FROM campaign_band WHERE band_key IN ({})"
                                   " ORDER BY submission_id", wanted):
            self.bands.setdefault(int(k), []).append(int(sid))

    def _candidates(self, keys: Sequence[int], exclude: int | None) -> list[int]:
        hits: dict[int, int] = {}
        for k in set(keys):
            for sid in self.bands.get(k, ()):
                hits[sid] = hits.get(sid, 0) + 1
        best = sorted(hits.items(), key=lambda kv: (-kv[1], kv[0]))[:CANDIDATES]
        return [sid for sid, _ in best if sid != exclude]

    def _read_earlier(self, ids: Sequence[int]) -> None:
        missing = [i for i in ids if i not in self.batch and i not in self.earlier]
        if not missing:
            return
        self.earlier.update(dict.fromkeys(missing))
        stmt = select(Submission.id, Submission.kind, Submission.body, Submission.reference).where(
            col(Submission.id).in_(missing))
        for sid, kind, body, ref in self.s.execute(stmt).all():
            self.earlier[int(sid)] = Earlier(kind, body, ref)

    def match(self, sub: Submission, *, precomputed: Keys | None = None) -> Member | None:
        """What `match` would decide for the next record of the batch (its id set, not written)."""
        assert sub.id is not None
        self.batch[sub.id] = sub
        if precomputed is not None and precomputed[0] == sub.body:
            shingles, keys = precomputed[1], precomputed[2]
        else:
            shingles, keys = similarity.keys_of(sub.body)
        if not keys:
            return None
        self._fetch(keys)  # nothing to do unless the keys were worked out again just now
        cands = self._candidates(keys, sub.id)
        self._read_earlier(cands)
        for cid in cands:
            cand = self.batch.get(cid) or self.earlier.get(cid)
            if cand is None or cand.kind != "evidence":
                continue
            if similarity.same_campaign(shingles, _shingles_of(cand.body)):
                return self._join(sub, cid)
        for k in sorted(set(keys)):
            self.bands.setdefault(k, []).append(sub.id)
            self.new_bands.append((k, sub.id))
        return None

    def _join(self, sub: Submission, first_id: int) -> Member:
        first = self.batch.get(first_id)
        if first is not None:
            first.campaign_id, first.campaign_size = first_id, (first.campaign_size or 1) + 1
            reference = first.reference
        else:
            self.grown[first_id] = self.grown.get(first_id, 0) + 1  # counted in by `write`
            earlier = self.earlier[first_id]
            assert earlier is not None  # a candidate that matched was read
            reference = earlier.reference
        sub.campaign_id = first_id
        return Member(first_id, reference or "")

    def write(self) -> None:
        """The band keys of the batch's records that stand alone, and the campaign sizes of
        earlier records that members joined (one UPDATE each, which takes the row lock)."""
        # In key order: neighbouring keys land in the same pages of the primary-key index.
        insert_plain(self.s, table="campaign_band", columns=("band_key", "submission_id"), rows=sorted(self.new_bands))
        for first_id, n in self.grown.items():
            self.s.execute(update(Submission).where(col(Submission.id) == first_id).values(
                campaign_id=first_id, campaign_size=func.coalesce(Submission.campaign_size, 1) + n))
        self.earlier.update((i, Earlier(x.kind, x.body, x.reference)) for i, x in self.batch.items())


def is_member(sub: Submission) -> bool:
    """A record of a campaign other than its first: it has no summary card of its own."""
    return sub.campaign_id is not None and sub.campaign_id != sub.id


def enqueue_card_update(s: Session, *, first_id: int) -> None:
    """A chat.update of the campaign's card, unless one is still waiting: 300 members arriving
    make a few updates, not 300, since the update reads the count when it runs, not now."""
    prefix = f"{SLACK_UPDATE}:campaign:"
    # Locked, so the outbox worker (which claims with SKIP LOCKED) cannot take the waiting update
    # and read the count before this member commits: the update would then show one too few, and
    # nothing would come after it. A worker that claimed it first has made it `sending`, which
    # this query no longer matches once the claim commits, so a new update is queued.
    waiting = s.exec(select(OutboxItem.id).where(
        OutboxItem.submission_id == first_id, OutboxItem.kind == SLACK_UPDATE, OutboxItem.status == "pending",
        col(OutboxItem.key).startswith(prefix)).with_for_update()).first()
    if waiting is not None:
        return
    ref = s.exec(select(Submission.reference).where(Submission.id == first_id)).one()
    enqueue(s, key=f"{prefix}{ref}:{uuid.uuid4().hex[:16]}", kind=SLACK_UPDATE, payload={"reference": ref},
            submission_id=first_id)


def info(s: Session, subs: Iterable[Submission]) -> dict[int, dict[str, object]]:
    """The record JSON's `campaign` ({"id": first reference, "size": n}) per record id, one query."""
    subs = [x for x in subs if x.campaign_id is not None and x.id is not None]
    firsts = {x.campaign_id for x in subs}
    if not firsts:
        return {}
    rows = s.exec(select(Submission.id, Submission.reference, Submission.campaign_size)
                  .where(col(Submission.id).in_(firsts))).all()
    known: dict[int | None, dict[str, object]] = {i: {"id": ref, "size": int(n or 1)} for i, ref, n in rows}
    return {x.id: known[x.campaign_id] for x in subs if x.campaign_id in known and x.id is not None}


def members(s: Session, *, first_id: int, undecided: bool = False) -> list[Submission]:
    """Every record of the campaign, the first included, oldest first."""
    stmt = select(Submission).where(Submission.campaign_id == first_id).order_by(col(Submission.id))
    if undecided:
        stmt = stmt.where(col(Submission.status).in_([str(x) for x in UNDECIDED]))
    return list(s.exec(stmt).all())


@dataclass
class Card:
    """What the campaign's card shows beyond the first record's summary."""

    size: int
    undecided: int
    differing: list[tuple[str, list[str]]] = field(default_factory=list)  # (reference, its own lines)
    choices: list[str] = field(default_factory=list)  # references of members one can open


def card(s: Session, first: Submission) -> Card | None:
    """The campaign card's figures for a first record; None when it has no campaign."""
    if first.id is None or first.campaign_id != first.id:
        return None
    count = func.count()
    undecided = s.exec(select(count).select_from(Submission).where(
        Submission.campaign_id == first.id, col(Submission.status).in_([str(x) for x in UNDECIDED]))).one()
    latest = s.exec(select(Submission.reference, Submission.body).where(
        Submission.campaign_id == first.id, col(Submission.id) != first.id)
        .order_by(col(Submission.id).desc()).limit(CARD_MEMBERS)).all()
    choices = s.exec(select(Submission.reference).where(
        Submission.campaign_id == first.id, col(Submission.id) != first.id)
        .order_by(col(Submission.id)).limit(OPEN_CHOICES)).all()
    return Card(
        size=int(first.campaign_size or 1),
        undecided=int(undecided),
        differing=[(ref or "?", similarity.differing_lines(first.body, body, limit=2)) for ref, body in latest],
        choices=[r for r in choices if r],
    )
