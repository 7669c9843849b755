"""No content at rest on PostgreSQL (docs/promises.md, promise 1).

A server process stores its durable state in a PostgreSQL cluster of the
test's own (initdb; its own directory and socket), which logs every statement
(``log_statement=all``), so a parameter that reached the database would show
in the log too. A full conversation with real end-to-end encryption runs,
a return passphrase is issued and redeemed; then the cluster is stopped and
its whole directory — data files, WAL, the server log — is searched for the
conversation's canaries: the message texts, their ciphertexts, the
passphrase in any spelling and the youth's address. None may be there.

Two positive checks keep the search honest: the log does hold the statements
(the audit inserts), and the data files do hold what should be stored (the
staff username)."""

from __future__ import annotations

from pathlib import Path

import pyotp

from chatserver.client.reference import staff_login
from tests.conftest import free_port
from tests.helpers import server_process
from tests.helpers.postgres import private_cluster, stop_cluster
from tests.security.test_server_canary import RecordingClient, _passphrase_forms, _server_env

INITDB_CONFIG = {"pg_hba.conf", "postgresql.conf", "pg_ident.conf", "postgresql.auto.conf"}


async def test_a_conversation_leaves_no_canary_in_postgresql(tmp_path: Path) -> None:
    with private_cluster(free_port(), log_statement="all", log_min_messages="info",
                         log_min_error_statement="info") as cluster:
        env, url = _server_env(tmp_path, asyncio_debug=False)
        env["CHAT_DATABASE_URL"] = cluster.url
        password = "canary-password-1b7e44c0"  # a canary, not a secret
        seed = server_process.add_staff(env, "mirapg", password, alias="Sana")
        log_path = tmp_path / "server.log"
        proc = server_process.serve(env, log_path)
        try:
            server_process.wait_ready(url, proc, log_path)
            login = await staff_login(url, "mirapg", password, pyotp.TOTP(seed).now())
            counsellor, youth = RecordingClient(), RecordingClient()
            await counsellor.connect(url, "/staff", headers={"Cookie": login.cookie})
            await counsellor.duty(True)
            await youth.connect(url, "/youth")
            conv = (await youth.start({"gender": "girl", "municipality": "Botkyrka"})
                    )["conversation"]
            await counsellor.claim(conv)
            await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 5)
            plain = ["CANARY-pg-youth-4e1f9a", "CANARY-pg-counsellor-0c3b72",
                     "CANARY-pg-ÅÄÖ-عربي-9d21"]
            await youth.send_text(conv, plain[0])
            await youth.send_text(conv, plain[2])
            await counsellor.next_message(5)
            await counsellor.next_message(5)
            await counsellor.send_text(conv, plain[1])
            await youth.next_message(5)
            await counsellor.offer_return(conv)
            await youth.wait_for(lambda: conv in youth.return_codes, 5)
            words = str(youth.return_codes[conv]["passphrase"])
            await counsellor.end(conv)
            await youth.close()

            back = RecordingClient()
            await back.connect(url, "/youth")
            returned = await back.start(passphrase=words)
            assert returned["returning"] == "queued"  # redeemed: the row is gone
            taken = await counsellor.take_next()
            await counsellor.end(taken["conversation"])
            await back.close()
            await counsellor.close()
        finally:
            server_process.stop(proc)
        stop_cluster(cluster.data)

        wire = youth.sent + counsellor.sent + back.sent
        ciphertexts = [s for s in wire if len(s) > 300]  # every ct is ≥ 363 base64 chars
        assert len(ciphertexts) == 3
        canaries = [*plain, *ciphertexts, *(c[:40] for c in ciphertexts), password,
                    *_passphrase_forms(words)]

        files = [f for f in cluster.root.rglob("*") if f.is_file()]
        assert any("pg_wal" in f.parts for f in files) and cluster.log in files
        pg_log = cluster.log.read_bytes()
        assert b"INSERT INTO audit" in pg_log  # statements are logged: the search means something
        assert any(b"mirapg" in f.read_bytes() for f in files if "base" in f.parts)
        for f in files:
            blob = f.read_bytes()
            # initdb's own configuration files name 127.0.0.1 in their
            # examples; everything the cluster wrote afterwards may not.
            address = [] if f.name in INITDB_CONFIG else ["127.0.0.1"]
            for canary in canaries + address:
                for encoded in {canary.encode("utf-8"), canary.encode("utf-16-le")}:
                    assert encoded not in blob, f"canary found in {f.relative_to(cluster.root)}"
