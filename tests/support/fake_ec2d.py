#!/usr/bin/env python3
"""A tiny stand-in for ec2d, used ONLY to check the client tests themselves.

It speaks just enough of the EC2 Query API (and /_ec2d/health, /_ec2d/status)
for tests/clients, and drives real Docker containers through the docker CLI
the way ec2d is specified to (localstack-ec2.<id> containers, pause = stopped,
images localstack-ec2/<name>:<ami-id> = AMIs). It is not ec2d and not a
reference for its design; it lets one tell a broken test from a broken ec2d:

    EC2D_BIN=tests/support/fake_ec2d.py python3 -m pytest tests/clients -q

Options: --listen HOST:PORT (or $EC2D_LISTEN), --data-dir DIR (or $EC2D_DATA_DIR).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
INSTANCE_ID_RE = re.compile(r"^i-([0-9a-f]{8}|[0-9a-f]{17})$")
PREFIX = "localstack-ec2"


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def docker(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    p = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and p.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {p.stderr.strip()}")
    return p


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} fake-ec2d: {msg}", flush=True)


class Store:
    def __init__(self, data_dir: str):
        self.path = os.path.join(data_dir, "state.json")
        self.lock = threading.RLock()
        self.instances: dict[str, dict] = {}
        self.pending_images: dict[str, str] = {}
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.instances = json.load(f)["instances"]

    def save(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"instances": self.instances}, f)
        os.replace(tmp, self.path)


def amis() -> dict[str, dict]:
    p = docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    out = {}
    for line in p.stdout.splitlines():
        ref, _, _iid = line.partition(" ")
        repo, _, tag = ref.rpartition(":")
        if repo.startswith(PREFIX + "/") and tag.startswith("ami-"):
            out[tag] = {"id": tag, "name": repo[len(PREFIX) + 1 :], "ref": ref}
    return out


def cname(iid: str) -> str:
    return f"{PREFIX}.{iid}"


def docker_status(iid: str) -> str:
    p = docker("inspect", "--type", "container", "--format", "{{.State.Status}}", cname(iid))
    return p.stdout.strip() if p.returncode == 0 else "absent"


def reconcile(store: Store) -> None:
    with store.lock:
        work = {k: dict(v) for k, v in store.instances.items()}
    for iid, inst in work.items():
        state, st = inst["state"], docker_status(iid)
        new = None
        try:
            if state == "pending":
                if st == "absent":
                    docker("run", "-d", "-i", "-t", "--name", cname(iid), "--label", "ec2d.fake=1",
                           inst["image_ref"], check=True)
                elif st == "paused":
                    docker("unpause", cname(iid), check=True)
                elif st in ("exited", "created"):
                    docker("start", cname(iid), check=True)
                if docker_status(iid) == "running":
                    new = "running"
            elif state == "stopping":
                if st == "running":
                    docker("pause", cname(iid), check=True)
                if docker_status(iid) == "paused":
                    new = "stopped"
            elif state == "shutting-down":
                if st != "absent":
                    docker("rm", "-f", cname(iid), check=True)
                new = "terminated"
            elif state == "running" and st in ("absent", "exited", "created", "paused"):
                with store.lock:
                    store.instances[iid]["state"] = "pending"
                    store.save()
        except RuntimeError as e:
            log(f"reconcile {iid}: {e}")
        if new:
            with store.lock:
                store.instances[iid]["state"] = new
                store.save()
            log(f"{iid}: {state} -> {new}")


def params_list(q: dict, prefix: str) -> list[str]:
    out, n = [], 1
    while f"{prefix}.{n}" in q:
        out.append(q[f"{prefix}.{n}"])
        n += 1
    return out


def parse_filters(q: dict) -> list[tuple[str, list[str]]]:
    out, n = [], 1
    while f"Filter.{n}.Name" in q:
        out.append((q[f"Filter.{n}.Name"], params_list(q, f"Filter.{n}.Value")))
        n += 1
    return out


def el(tag: str, value) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def tagset(tags: dict) -> str:
    return "<tagSet>" + "".join(f"<item>{el('key', k)}{el('value', v)}</item>" for k, v in tags.items()) + "</tagSet>"


def state_xml(tag: str, name: str) -> str:
    return f"<{tag}>{el('code', CODES[name])}{el('name', name)}</{tag}>"


def instance_xml(inst: dict) -> str:
    return (
        "<item>" + el("instanceId", inst["id"]) + el("imageId", inst["image_id"]) + state_xml("instanceState", inst["state"])
        + el("amiLaunchIndex", inst["launch_index"]) + el("instanceType", inst["type"])
        + el("launchTime", inst["launch_time"]) + "<placement>" + el("availabilityZone", "us-east-1a") + "</placement>"
        + tagset(inst["tags"]) + "</item>"
    )


class Api:
    def __init__(self, store: Store):
        self.store = store

    def check_ids(self, ids: list[str]) -> list[dict]:
        with self.store.lock:
            for i in ids:
                if not INSTANCE_ID_RE.match(i):
                    raise ApiError("InvalidInstanceID.Malformed", f"Invalid id: \"{i}\"")
            missing = [i for i in ids if i not in self.store.instances]
            if missing:
                raise ApiError("InvalidInstanceID.NotFound", f"The instance IDs '{', '.join(missing)}' do not exist")
            return [self.store.instances[i] for i in ids]

    def RunInstances(self, q):
        ami = q.get("ImageId", "")
        images = amis()
        if ami not in images:
            raise ApiError("InvalidAMIID.NotFound", f"The image id '[{ami}]' does not exist")
        count = int(q.get("MaxCount", q.get("MinCount", "1")))
        tags, n = {}, 1
        while f"TagSpecification.{n}.ResourceType" in q:
            if q[f"TagSpecification.{n}.ResourceType"] == "instance":
                m = 1
                while f"TagSpecification.{n}.Tag.{m}.Key" in q:
                    tags[q[f"TagSpecification.{n}.Tag.{m}.Key"]] = q.get(f"TagSpecification.{n}.Tag.{m}.Value", "")
                    m += 1
            n += 1
        rid = "r-" + secrets.token_hex(9)[:17]
        made = []
        with self.store.lock:
            for k in range(count):
                iid = "i-" + secrets.token_hex(9)[:17]
                inst = {"id": iid, "image_id": ami, "image_ref": images[ami]["ref"], "state": "pending",
                        "launch_index": k, "type": q.get("InstanceType", "t3.micro"), "reservation": rid,
                        "launch_time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "tags": tags}
                self.store.instances[iid] = inst
                made.append(inst)
            self.store.save()
        return (el("reservationId", rid) + el("ownerId", "000000000000") + "<groupSet/>"
                + "<instancesSet>" + "".join(instance_xml(i) for i in made) + "</instancesSet>")

    def DescribeInstances(self, q):
        ids = params_list(q, "InstanceId")
        insts = self.check_ids(ids) if ids else list(self.store.instances.values())
        for name, values in parse_filters(q):
            if name == "instance-state-name":
                insts = [i for i in insts if i["state"] in values]
            elif name.startswith("tag:"):
                insts = [i for i in insts if i["tags"].get(name[4:]) in values]
            elif name == "instance-id":
                insts = [i for i in insts if i["id"] in values]
        by_res: dict[str, list] = {}
        for i in insts:
            by_res.setdefault(i["reservation"], []).append(i)
        body = "".join(
            "<item>" + el("reservationId", r) + el("ownerId", "000000000000") + "<groupSet/><instancesSet>"
            + "".join(instance_xml(i) for i in items) + "</instancesSet></item>"
            for r, items in by_res.items()
        )
        return f"<reservationSet>{body}</reservationSet>"

    def _change(self, q, allowed: dict[str, str], immediate: dict[str, str] | None = None):
        ids = params_list(q, "InstanceId")
        items = []
        with self.store.lock:
            for inst in self.check_ids(ids):
                prev = inst["state"]
                cur = allowed.get(prev, prev)
                if immediate and prev in immediate:
                    cur = immediate[prev]
                inst["state"] = cur
                items.append("<item>" + el("instanceId", inst["id"]) + state_xml("currentState", cur)
                             + state_xml("previousState", prev) + "</item>")
            self.store.save()
        return "<instancesSet>" + "".join(items) + "</instancesSet>"

    def StopInstances(self, q):
        return self._change(q, {"running": "stopping", "pending": "stopping"})

    def StartInstances(self, q):
        return self._change(q, {"stopped": "pending"})

    def TerminateInstances(self, q):
        return self._change(q, {s: "shutting-down" for s in ("pending", "running", "stopping", "stopped")})

    def DescribeImages(self, q):
        images = amis()
        ids = params_list(q, "ImageId")
        sel = list(images.values())
        if ids:
            missing = [i for i in ids if i not in images]
            if missing:
                raise ApiError("InvalidAMIID.NotFound", f"The image id '[{missing[0]}]' does not exist")
            sel = [images[i] for i in ids]
        for name, values in parse_filters(q):
            if name == "tag:ec2_vm_manager":
                sel = [i for i in sel if "docker" in values]
            elif name == "name":
                sel = [i for i in sel if i["name"] in values]
        return "<imagesSet>" + "".join(
            "<item>" + el("imageId", i["id"]) + el("name", i["name"]) + el("imageState", "available")
            + tagset({"ec2_vm_manager": "docker"}) + "</item>" for i in sel
        ) + "</imagesSet>"

    def CreateImage(self, q):
        [inst] = self.check_ids([q.get("InstanceId", "")])
        name = q.get("Name", "")
        if not name:
            raise ApiError("MissingParameter", "Name is required")
        ami = "ami-" + secrets.token_hex(9)[:17]
        docker("commit", cname(inst["id"]), f"{PREFIX}/{name}:{ami}", check=True)
        return el("imageId", ami)

    def DeregisterImage(self, q):
        ami = q.get("ImageId", "")
        img = amis().get(ami)
        if not img:
            raise ApiError("InvalidAMIID.NotFound", f"The image id '[{ami}]' does not exist")
        docker("image", "rm", img["ref"])
        return el("return", "true")


def make_handler(api: Api, started: float):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            log("http " + fmt % args)

        def send(self, status: int, body: str, ctype: str = "text/xml") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/_ec2d/health":
                return self.send(200, "ok", "text/plain")
            if self.path == "/_ec2d/status":
                return self.send(200, json.dumps({"fake": True, "uptime": time.time() - started,
                                                  "instances": len(api.store.instances)}), "application/json")
            self.send(404, "not found", "text/plain")

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            q = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
            action = q.get("Action", "")
            rid = str(uuid.uuid4())
            try:
                fn = getattr(api, action, None) if action[:1].isupper() else None
                if fn is None:
                    raise ApiError("InvalidAction", f"The action {action} is not valid for this web service.")
                body = fn(q)
                self.send(200, f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{NS}">'
                               f"{el('requestId', rid)}{body}</{action}Response>")
            except ApiError as e:
                self.send(e.status, f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                                    f"{el('Code', e.code)}{el('Message', e.message)}</Error></Errors>"
                                    f"{el('RequestID', rid)}</Response>")
            except Exception as e:  # noqa: BLE001
                self.send(500, f"<Response><Errors><Error><Code>InternalError</Code>{el('Message', repr(e))}"
                               f"</Error></Errors>{el('RequestID', rid)}</Response>")

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default=os.environ.get("EC2D_LISTEN", "127.0.0.1:4566"))
    ap.add_argument("--data-dir", default=os.environ.get("EC2D_DATA_DIR", "/tmp/fake-ec2d"))
    a = ap.parse_args()
    os.makedirs(a.data_dir, exist_ok=True)
    store = Store(a.data_dir)
    host, _, port = a.listen.rpartition(":")

    def loop():
        while True:
            try:
                reconcile(store)
            except Exception as e:  # noqa: BLE001
                log(f"reconcile error: {e!r}")
            time.sleep(0.3)

    threading.Thread(target=loop, daemon=True).start()
    srv = ThreadingHTTPServer((host, int(port)), make_handler(Api(store), time.time()))
    log(f"listening on {a.listen}, data dir {a.data_dir}, {len(store.instances)} instances")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
