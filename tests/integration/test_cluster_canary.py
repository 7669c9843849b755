"""Canaries through several nodes and a replicated Redis (docs/promises.md,
promise 1; docs/design/live-state.md): a conversation between a youth and a
counsellor on different nodes, so every message crosses the Redis log, run
against a primary and a replica made from the shipped deploy/redis/
configuration (persistence off), every node logging at DEBUG. Afterwards no
canary is in any file under either Redis's directory (its log included), in
any node's log, data or temp directory:

- the plaintexts, in both directions;
- every box's ciphertext (base64, and a prefix of it);
- the resume secrets (a dropped transport and a resume on another node
  sends the youth's over the wire again);
- the return passphrase (it crosses nodes over the direct channel, sealed,
  and is redeemed on a third node);
- the youth's address: the youth connects from a loopback address of its
  own, which the load balancer passes on in X-Forwarded-For.

Redis holds the live state in memory, so it is also read key by key before
it stops: ciphertext may be there (it waits for delivery), but no plaintext,
no resume secret, no passphrase and no address.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cluster import cluster, node_of
from tests.helpers.postgres import fresh_database
from tests.helpers.redis_server import DEPLOY_CONF, RedisServer, redis_server
from tests.security.test_server_canary import RecordingClient, _assert_absent, _passphrase_forms

pytestmark = [pytest.mark.redis]


def _redis_contents(server: RedisServer) -> dict[bytes, bytes]:
    """Every key the server holds and its value(s), as one blob per key."""
    contents: dict[bytes, bytes] = {}
    with server.admin(decode=False) as raw:
        for key in raw.scan_iter(count=1000):
            kind, blob = raw.type(key), bytearray()
            if kind == b"string":
                blob += raw.get(key) or b""
            elif kind == b"stream":
                # One blob per entry, named by the command it holds.
                for entry_id, fields in raw.xrange(key):
                    entry = b"".join(k + v for k, v in fields.items())
                    method = re.search(rb'\["m","([a-z_]+)"\]', entry)
                    name = method.group(1) if method else b"?"
                    contents[key + b" " + entry_id + b" " + name] = entry
                continue
            elif kind == b"set":
                blob += b"".join(raw.smembers(key))
            elif kind == b"hash":
                for k, v in raw.hgetall(key).items():
                    blob += k + v
            elif kind == b"list":
                blob += b"".join(raw.lrange(key, 0, -1))
            contents[key] = bytes(blob)
    return contents


async def test_no_canary_in_any_file_of_the_nodes_or_of_either_redis(tmp_path: Path) -> None:
    youth_address = f"127.{secrets.randbelow(150) + 100}.{secrets.randbelow(250) + 1}." \
                    f"{secrets.randbelow(250) + 1}"
    plain = [f"CANARY-youth-{secrets.token_hex(4)}", f"CANARY-counsellor-{secrets.token_hex(4)}",
             f"CANARY-ÅÄÖ-عربي-{secrets.token_hex(3)}"]
    deployed = DEPLOY_CONF.is_file()
    async with fresh_database() as database_url:
        with redis_server(use_deploy_conf=deployed) as primary, \
                redis_server(replica_of=primary, use_deploy_conf=deployed) as replica:
            async with cluster(tmp_path / "cluster", primary, database_url, nodes=3) as c:
                youth = RecordingClient()
                youth.local_address = youth_address
                counsellor = RecordingClient()
                await c.youth("n1", client=youth)
                login: Any
                _, login = await c.counsellor("n2", client=counsellor)
                conv = (await youth.start())["conversation"]
                await counsellor.claim(conv)
                await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 15)
                assert c.proxy.routed[-1].peer != youth_address  # the counsellor's
                assert any(r.peer == youth_address for r in c.proxy.routed)

                await youth.send_text(conv, plain[0])
                await youth.send_text(conv, plain[2])
                assert (await counsellor.next_message(15)).text == plain[0]
                assert (await counsellor.next_message(15)).text == plain[2]
                await counsellor.send_text(conv, plain[1])
                assert (await youth.next_message(15)).text == plain[1]

                # A dropped transport; the youth resumes on another node.
                await youth.disconnect()
                await counsellor.send_text(conv, plain[1] + "-while-away")
                c.proxy.pin_next("n3")
                await youth.reconnect(c.url)
                assert node_of(youth) == "n3"
                assert (await youth.next_message(15)).text == plain[1] + "-while-away"

                # A return passphrase, from n2 to the youth's page on n3.
                await counsellor.offer_return(conv)
                await youth.wait_for(lambda: conv in youth.return_codes, 15)
                words = str(youth.return_codes[conv]["passphrase"])
                await counsellor.end(conv)

                # The youth comes back on another node with it, respelled.
                back = RecordingClient()
                back.local_address = youth_address
                await c.youth("n2", client=back)
                returned = await back.start(passphrase=words.upper().replace(" ", "-"))
                assert returned["returning"] in ("queued", "choose")

                # What Redis holds in memory, on both, once the replica has
                # every write so far (WAIT: the primary's count of replicas that did).
                with primary.admin() as r:
                    assert r.execute_command("WAIT", 1, 30000) == 1
                with replica.admin() as r:
                    assert r.exists("chat:live:log")  # the replica did get the state
                resumes = [x.conversations[conv].resume_secret for x in (youth, counsellor)]
                in_memory = {"plaintext": plain, "the youth's resume secret": [resumes[0]],
                             "the counsellor's resume secret": [resumes[1]],
                             "the youth's address": [youth_address], "the passphrase": [words],
                             "the staff session": [login.cookie.split("=", 1)[1]]}
                found = [(what, key, server.port)
                         for server in (primary, replica)
                         for key, blob in _redis_contents(server).items()
                         for what, values in in_memory.items()
                         if any(v.encode() in blob or v.encode() in key for v in values)]
                assert found == [], f"in Redis's memory: {found}"

                await c.close_clients()
                node_files = c.files  # read after the nodes stopped (their logs complete)
            primary.stop()
            replica.stop()

            wire = youth.sent + counsellor.sent + back.sent
            ciphertexts = [s for s in wire if len(s) > 300]  # a box's ct is ≥ 363 chars
            assert len(ciphertexts) >= 4
            canaries = [*plain, *ciphertexts, *(ct[:40] for ct in ciphertexts), *resumes,
                        youth_address, *_passphrase_forms(words)]
            files = [*node_files(), *primary.files(), *replica.files()]
            assert primary.log in files and replica.log in files
            assert any(f.name.startswith("serve-") for f in files)
            text = b"".join(f.read_bytes() for f in files if f.name.startswith("serve-"))
            assert b"DEBUG" in text, "the nodes logged nothing at DEBUG?"
            _assert_absent(files, canaries)
