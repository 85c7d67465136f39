"""Benchmark: the file store, upload checks, the donor's evidence list and the compliance matrix.

Usage:
    python benchmarks/bench_evidence.py                  # SQLite and PostgreSQL (127.0.0.1:5432, user postgres)
    python benchmarks/bench_evidence.py --sqlite-only
    python benchmarks/bench_evidence.py --rows 20000     # a smaller run

Figures printed (best and median of 5, after one warm-up run); nothing is asserted:
- FileStore.put and verified read of 1 MB and 25 MB blobs (SHA-256 while writing, atomic rename);
- check_upload (magic bytes + people-list scan) of a 25 MB PDF and of a 5,000-row CSV;
- the first page of a donor's evidence list (row rule + confidentiality rule) over ``--rows`` items;
- requirement_status for a grant with 24 requirements x 4 periods over the same evidence and 200 meetings.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select  # noqa: E402
from support import scratch_database  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

PASSWORD = "bench-password-not-secret"


def best_of(fn, repeat: int = 5) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def show(label: str, figures: tuple[float, float]) -> None:
    print(f"  {label:<62} best {figures[0] * 1000:9.1f} ms   median {figures[1] * 1000:9.1f} ms")


def bench_store() -> None:
    from core.storage import FileStore
    from grants.evidence.services import check_upload

    with tempfile.TemporaryDirectory() as root:
        store = FileStore(root)
        for megabytes in (1, 25):
            data = os.urandom(megabytes * 1024 * 1024)

            def put_new(data: bytes = data) -> None:
                store.put(data[:-8] + os.urandom(8))  # a new blob every time

            show(f"FileStore.put new {megabytes} MB blob", best_of(put_new))
            sha = store.put(data)
            show(f"FileStore.put same {megabytes} MB blob again (stored once)", best_of(lambda: store.put(data)))
            show(f"FileStore.read {megabytes} MB with checksum check", best_of(lambda: store.read(sha)))
        pdf = b"%PDF-1.4\n" + os.urandom(25 * 1024 * 1024)
        show("check_upload 25 MB PDF (magic bytes)", best_of(lambda: check_upload(pdf, "minutes.pdf")))
        csv = ("constituency,count\n" + "".join(f"group {i},{i % 7}\n" for i in range(5000))).encode()
        show("check_upload 5,000-row CSV (text + people-list scan)", best_of(lambda: check_upload(csv, "counts.csv")))


def bench_database(url: str, rows: int) -> None:
    os.environ["DATABASE_URL"] = url
    from app import create_app
    from app.bootstrap import create_user, ensure_roles, upgrade_database
    from config.settings import TestConfig
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import services as grants
    from grants.compliance import services as compliance
    from grants.compliance.models import Requirement
    from grants.evidence import services as evidence
    from grants.evidence.models import Consultation, Evidence, EvidenceKind, Sensitivity, VerificationStatus
    from grants.models import MemberRole

    with tempfile.TemporaryDirectory() as instance:
        app = create_app(TestConfig, INSTANCE_PATH=instance)
        upgrade_database(app)
        ensure_roles(app)
        create_user(app, "bench-donor", "donor@bench.example.org", "Donor", PASSWORD)
        with app.app_context(), acting_as(Actor(None, "bench", "system")):
            session = db.session
            funder = grants.create_funder(session, name="Bench Fund", code="BF")
            grant = grants.create_grant(
                session,
                funder=funder,
                reference="B-1",
                title="Bench",
                recipient="Org",
                currency="USD",
                amount="1000",
                start_date=date(2026, 1, 1),
                end_date=date(2027, 12, 31),
            )
            periods = grants.generate_periods(session, grant, "semester", 45)
            donor = app.appbuilder.sm.find_user(username="bench-donor")
            donor = session.get(type(donor), donor.id)
            grants.add_member(session, grant, donor, MemberRole.donor)
            body = evidence.create_body(session, code="RCM", name="RCM")
            session.commit()
            rng = random.Random(7)
            kinds, sens = list(EvidenceKind), list(Sensitivity)
            start = time.perf_counter()
            batch = []
            for i in range(rows):
                batch.append(
                    {
                        "grant_id": grant.id,
                        "title": f"Evidence {i}",
                        "kind": rng.choice(kinds).name,
                        "evidence_date": date(2026, 1, 1) + timedelta(days=rng.randrange(720)),
                        "sensitivity": rng.choice(sens).name,
                        "status": rng.choice(list(VerificationStatus)).name,
                        "url": f"https://example.org/{i}",
                        "looks_like_people_list": False,
                        "is_demo": False,
                    }
                )
                if len(batch) == 5000:
                    session.execute(insert(Evidence.__table__), batch)
                    batch = []
            if batch:
                session.execute(insert(Evidence.__table__), batch)
            session.execute(
                insert(Consultation.__table__),
                [
                    {
                        "grant_id": grant.id,
                        "body_id": body.id,
                        "held_on": date(2026, 1, 1) + timedelta(days=3 * i + 1),
                        "title": f"RCM {i}",
                        "is_demo": False,
                        **{
                            f"attendance_{k}": rng.randrange(4)
                            for k in (
                                "government",
                                "civil_society",
                                "sex_workers",
                                "msm",
                                "transgender",
                                "people_who_use_drugs",
                                "plhiv",
                                "donors",
                                "other",
                            )
                        },
                    }
                    for i in range(200)
                ],
            )
            session.commit()
            print(f"  loaded {rows:,} evidence rows and 200 meetings in {time.perf_counter() - start:.1f} s")
            for i in range(24):
                rule = [
                    {"rule": "evidence_verified", "params": {"kind": kinds[i % len(kinds)].value}},
                    {"rule": "consultation_representation", "params": {"body": "RCM", "population": "sex_workers"}},
                    {"rule": "report_submitted", "params": {}},
                ][i % 3]
                compliance.create_requirement(
                    session,
                    grant,
                    code=f"R{i:02d}",
                    title=f"Requirement {i}",
                    frequency=["per_period", "annual", "once"][i % 3],
                    rules=[rule],
                )
            session.commit()

            def donor_first_page() -> None:
                query = evidence.visible_evidence(donor).order_by(Evidence.evidence_date.desc()).limit(25)
                list(session.scalars(query))
                session.scalar(select(db.func.count()).select_from(evidence.visible_evidence(donor).subquery()))

            show(f"donor's evidence list: page 1 + count over {rows:,} rows", best_of(donor_first_page))
            show(
                "requirement_status: 24 requirements x 4 periods",
                best_of(lambda: compliance.requirement_status(session, grant.id, today=date(2026, 11, 29))),
            )
            show(
                "requirement_status for one period",
                best_of(lambda: compliance.requirement_status(session, grant.id, periods[1].id, date(2026, 11, 29))),
            )
            show(
                "evidence_register (exports) without confidential items",
                best_of(lambda: evidence.evidence_register(session, grant.id)),
            )
            assert session.scalar(select(db.func.count(Requirement.id))) == 24
            db.session.remove()
            db.engine.dispose()
    os.environ.pop("DATABASE_URL", None)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    print("File store and upload checks")
    bench_store()
    with tempfile.TemporaryDirectory() as tmp:
        print("SQLite")
        url, _ = scratch_database(None, Path(tmp), "bench")
        bench_database(url, args.rows)
    if not args.sqlite_only:
        print("PostgreSQL")
        with tempfile.TemporaryDirectory() as tmp:
            url, drop = scratch_database(POSTGRES, Path(tmp), "bench")
            try:
                bench_database(url, args.rows)
            finally:
                drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
