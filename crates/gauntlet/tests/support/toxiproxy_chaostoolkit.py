"""Drives gauntlet's Toxiproxy API with Chaos Toolkit's own Toxiproxy driver
(chaostoolkit-toxiproxy, the `chaostoxi` package) and observes each toxic through the proxy
with a raw socket. Prints one JSON object of observations; the Rust test judges them.

usage: toxiproxy_chaostoolkit.py API_PORT UPSTREAM_PORT
"""

import json
import socket
import sys
import time

from chaostoxi.proxy.actions import create_proxy, delete_proxy, disable_proxy, enable_proxy, reset
from chaostoxi.proxy.probes import get_proxy_attribute, proxy_exist
from chaostoxi.toxic.actions import (
    create_bandwith_degradation_toxic,
    create_latency_toxic,
    create_limiter_toxic,
    create_slicer_toxic,
    create_timeout_toxic,
    create_toxic,
    delete_toxic,
)

api_port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
cfg = {"toxiproxy_host": "127.0.0.1", "toxiproxy_port": api_port}


def fetch(port):
    """One HTTP request through the proxy: bytes received, reads, seconds, how it ended."""
    started = time.monotonic()
    data, reads = b"", 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: upstream\r\n\r\n")
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    ended = "closed"
                    break
                data += chunk
                reads += 1
    except ConnectionRefusedError:
        ended = "refused"
    except (ConnectionResetError, BrokenPipeError):
        ended = "reset"
    except socket.timeout:
        ended = "timeout"
    return {
        "bytes": len(data),
        "reads": reads,
        "seconds": time.monotonic() - started,
        "ended": ended,
        "complete": data.endswith(b"END"),
    }


seen = {}
seen["created"] = create_proxy("shop", "127.0.0.1", upstream_port, configuration=cfg)
port = int(cfg["shop_PORT"])
seen["exists"] = proxy_exist("shop", configuration=cfg)
seen["listen"] = get_proxy_attribute("shop", "listen", configuration=cfg)
seen["clean"] = fetch(port)

create_latency_toxic("shop", "slow", latency=300, configuration=cfg)
seen["latency"] = fetch(port)
delete_toxic("shop", "slow", configuration=cfg)

create_limiter_toxic("shop", "cut", bytes_limit=100, configuration=cfg)
seen["limit_data"] = fetch(port)
delete_toxic("shop", "cut", configuration=cfg)

create_slicer_toxic("shop", "sliced", average_size=64, size_variation=16, delay=20000, configuration=cfg)
seen["slicer"] = fetch(port)
delete_toxic("shop", "sliced", configuration=cfg)

create_bandwith_degradation_toxic("shop", "narrow", rate=2, configuration=cfg)
seen["bandwidth"] = fetch(port)
delete_toxic("shop", "narrow", configuration=cfg)

create_timeout_toxic("shop", "stall", timeout=300, configuration=cfg)
seen["timeout"] = fetch(port)
delete_toxic("shop", "stall", configuration=cfg)

seen["reset_peer_created"] = create_toxic(
    "shop", "rst", "reset_peer", stream="upstream", attributes={"timeout": 0}, configuration=cfg
)
seen["reset_peer"] = fetch(port)
try:
    # The driver raises when the API refuses (in an experiment: a failed activity).
    seen["unknown_toxic_created"] = create_toxic(
        "shop", "typo", "latency", attributes={"latancy": 100}, configuration=cfg
    )
except TypeError:
    seen["unknown_toxic_created"] = False
seen["after_reset"] = (reset(configuration=cfg), fetch(port))

disable_proxy("shop", configuration=cfg)
seen["disabled"] = fetch(port)
seen["enabled_after_disable"] = get_proxy_attribute("shop", "enabled", configuration=cfg)
enable_proxy("shop", configuration=cfg)
seen["enabled"] = fetch(int(cfg["shop_PORT"]))

delete_proxy("shop", configuration=cfg)
seen["deleted_exists"] = proxy_exist("shop", configuration=cfg)
seen["deleted"] = fetch(port)
print(json.dumps(seen))
