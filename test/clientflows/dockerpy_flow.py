"""What docker-py (Debian python3-docker 5.x) does for docker-compose v1,
Ansible's docker modules, molecule and testcontainers-python: run,
exec_run, put/get_archive, images.build, streamed logs, df and prune.

Prints one JSON object whose values do not depend on IDs or timing, so
that a run directly against dockerd and one through dockgate compare
equal. Every step that fails is recorded as its exception's class and the
daemon's status, and the flow goes on."""

import io
import json
import sys
import tarfile

import docker

label_value, image, tag = sys.argv[1], sys.argv[2], sys.argv[3]
labels = {"e2e.matrix": label_value}
client = docker.from_env(timeout=120)
out = {}


def step(name, fn):
    try:
        out[name] = fn()
    except docker.errors.APIError as e:
        out[name] = {"error": type(e).__name__, "status": e.status_code, "explanation": str(e.explanation)}
    except Exception as e:  # noqa: BLE001 - recorded, compared, reported
        out[name] = {"error": type(e).__name__, "message": str(e)}


# Both streams of one log, whose order between them dockerd does not keep.
step("run", lambda: sorted(client.containers.run(
    image, ["sh", "-c", "echo out; echo err >&2"], remove=True, labels=labels, stderr=True).decode().split()))

box = client.containers.run(image, ["sleep", "60"], detach=True, labels=labels)


def exec_run():
    r = box.exec_run(["sh", "-c", "echo to-out; echo to-err >&2; exit 3"], demux=True)
    return [r.exit_code, r.output[0].decode(), r.output[1].decode()]


step("exec_run", exec_run)
step("exec_run_env_workdir", lambda: box.exec_run(
    ["sh", "-c", "echo $GREETING; pwd"], environment={"GREETING": "hi"}, workdir="/tmp").output.decode())


def archive():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"hello from docker-py\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    put = box.put_archive("/tmp", buf.getvalue())
    chunks, stat = box.get_archive("/tmp/hello.txt")
    got = io.BytesIO(b"".join(chunks))
    with tarfile.open(fileobj=got) as tf:
        content = tf.extractfile("hello.txt").read().decode()
    return [put, stat["name"], stat["size"], content]


step("archive", archive)


def logs():
    c = client.containers.run(image, ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.1; done"],
                              detach=True, labels=labels)
    lines = b"".join(c.logs(stream=True, follow=True)).decode()
    return [lines, c.wait()["StatusCode"]]


step("logs_follow", logs)


def build():
    dockerfile = "FROM %s\nRUN echo built > /built\nCMD cat /built\n" % image
    img, stream = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, labels=labels)
    # The instructions as the builder printed them, without its step
    # numbers; dockgate pins FROM to the image ID it judged and adds its
    # owner labels as instructions of their own (docs/tenancy.md).
    steps = []
    for line in stream:
        text = line.get("stream", "")
        if not text.startswith("Step "):
            continue
        instr = text.split(" : ", 1)[1].strip()
        if instr.startswith("LABEL io.dockgate."):
            continue
        if instr.startswith("FROM "):
            instr = "FROM"
        steps.append(instr)
    ran = client.containers.run(tag, remove=True, labels=labels).decode()
    client.images.remove(tag)
    return [steps, ran]


step("build", build)


def df():
    d = client.df()
    return sorted(k for k in d.keys() if k != "BuilderSize")


step("df", df)


def prune():
    box.kill()
    res = client.containers.prune(filters={"label": "e2e.matrix=" + label_value})
    return len(res.get("ContainersDeleted") or [])


step("prune", prune)
print(json.dumps(out, sort_keys=True))
