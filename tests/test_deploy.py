"""The deployment files are right by construction: docker-compose.yml, Dockerfile, .dockerignore.

Nothing here can build or start a container, so the tests read the files. The compose file is
resolved by `docker compose config` where a docker client with the compose plugin exists, and
otherwise parsed as YAML with compose's `${VAR:-default}` interpolation done here against
`.env.example` (what a first-time `cp .env.example .env` gives).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.settings import CoreSettings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
APP_SERVICES = ("bot", "trainer", "bot-cpu", "trainer-cpu")
SECRETS = ("DISCORD_TOKEN", "OPENAI_API_KEY", "VLLM_API_KEY", "HF_TOKEN")


def _env_example() -> dict[str, str]:
    env = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            env[m.group(1)] = m.group(2).strip()
    return env


_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def _interpolate(node, env: dict[str, str]):
    if isinstance(node, dict):
        return {k: _interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env) for v in node]
    if isinstance(node, str):
        return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), node)
    return node


def _normalise_yaml(doc: dict) -> dict:
    """Bring the hand-parsed YAML to the shape `docker compose config` prints (long syntax)."""
    for service in doc["services"].values():
        if isinstance(service.get("depends_on"), list):
            service["depends_on"] = {name: {"condition": "service_started"} for name in service["depends_on"]}
        volumes = []
        for volume in service.get("volumes", []):
            if isinstance(volume, str):
                parts = volume.split(":")
                source, target = parts[0], parts[1]
                volumes.append({"type": "bind" if source.startswith((".", "/")) else "volume", "source": source,
                                "target": target, "read_only": len(parts) > 2 and "ro" in parts[2].split(",")})
            else:
                volumes.append(volume)
        service["volumes"] = volumes
        if isinstance(service.get("environment"), list):
            service["environment"] = dict(item.split("=", 1) for item in service["environment"])
        files = service.get("env_file") or []
        service["env_file"] = [f if isinstance(f, str) else f["path"] for f in ([files] if isinstance(files, str) else files)]
    return doc


def _docker_compose_config(profiles: list[str], tmp_path: Path) -> dict | None:
    """`docker compose config --format json`, or None where no docker compose client exists."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        return None
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".git", ".venv", "data", "tests", "__pycache__"))
    shutil.copy(ROOT / ".env.example", project / ".env")
    args = [docker, "compose", "--project-directory", str(project)]
    for profile in profiles:
        args += ["--profile", profile]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_", "PERSONABOT_", "DISCORD_", "TORCH_"))}
    done = subprocess.run([*args, "config", "--format", "json"], capture_output=True, text=True, env=env, cwd=project)
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    for service in config["services"].values():
        for volume in service.get("volumes", []):
            if volume.get("type") == "bind":
                volume["source"] = "./" + os.path.relpath(volume["source"], project)
    return config


@pytest.fixture(scope="module", params=[["gpu"], ["cpu"]], ids=["gpu", "cpu"])
def compose(request, tmp_path_factory) -> dict:
    profiles = request.param
    config = _docker_compose_config(profiles, tmp_path_factory.mktemp("compose"))
    if config is None:
        doc = _normalise_yaml(_interpolate(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")), _env_example()))
        # Profiles as compose applies them: services without a profile always run.
        doc["services"] = {name: s for name, s in doc["services"].items()
                           if not s.get("profiles") or set(s["profiles"]) & set(profiles)}
        config = doc
    config["_profiles"] = profiles
    return config


def _services(compose: dict) -> dict:
    return compose["services"]


def test_profiles_select_the_right_services(compose):
    names = set(_services(compose))
    if compose["_profiles"] == ["gpu"]:
        assert names == {"migrate", "vllm", "bot", "trainer"}
    else:
        assert names == {"migrate", "bot-cpu", "trainer-cpu"}, "the CPU profile runs no vllm service"


def test_app_services_build_the_right_targets_and_commands(compose):
    services = _services(compose)
    expected = {"bot": ("bot", ["run"]), "bot-cpu": ("bot", ["run"]),
                "trainer": ("trainer", ["trainer", "--keep-running"]),
                "trainer-cpu": ("trainer", ["trainer", "--keep-running"])}
    for name, (target, command) in expected.items():
        if name not in services:
            continue
        service = services[name]
        assert service["build"]["target"] == target, name
        assert service["command"] == command, name
    if "bot-cpu" in services:
        assert str(services["bot-cpu"]["build"]["args"]["WITH_LOCAL"]) == "1", "the CPU bot needs the local backend"
        assert "WITH_LOCAL" not in (services["trainer-cpu"]["build"].get("args") or {})
    if "bot" in services:
        assert "WITH_LOCAL" not in (services["bot"]["build"].get("args") or {}), "the GPU bot serves from vLLM, without torch"
        assert services["trainer"]["build"]["args"]["TORCH_VARIANT"].startswith("cu")


def test_gpu_reservations(compose):
    services = _services(compose)
    for name in ("vllm", "trainer"):
        if name in services:
            devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
            assert any("gpu" in d["capabilities"] and d["driver"] == "nvidia" for d in devices), name
    for name in ("bot", "bot-cpu", "trainer-cpu", "migrate"):
        if name in services:
            assert "deploy" not in services[name], f"{name} must not ask for a GPU"


def test_bot_healthcheck_hits_healthz_on_the_metrics_port(compose):
    for name in ("bot", "bot-cpu"):
        service = _services(compose).get(name)
        if service is None:
            continue
        test = " ".join(service["healthcheck"]["test"])
        port = service["environment"]["PERSONABOT_METRICS_PORT"]
        assert f"127.0.0.1:{port}/healthz" in test
        assert CoreSettings(_env_file=None, metrics_port=port).metrics_port == int(port)


def test_vllm_service(compose):
    vllm = _services(compose).get("vllm")
    if vllm is None:
        assert compose["_profiles"] == ["cpu"]
        return
    image, _, tag = vllm["image"].rpartition(":")
    assert image == "vllm/vllm-openai" and tag and tag != "latest" and re.match(r"v?\d+\.\d+", tag), vllm["image"]
    command = vllm["command"]
    env = _env_example()

    def arg(flag):
        assert flag in command, f"vllm is started without {flag}"
        return command[command.index(flag) + 1]

    assert "--enable-lora" in command
    assert arg("--max-loras") == env["VLLM_MAX_LORAS"]
    assert arg("--max-lora-rank") == env["VLLM_MAX_LORA_RANK"]
    assert arg("--model") == env["VLLM_MODEL"]
    assert vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    assert not vllm.get("ports"), "vLLM's runtime LoRA endpoints must not be published to the host"
    # It gets the Hugging Face token only, not the bot's secrets.
    assert not _as_written()["vllm"].get("env_file")
    assert set(vllm["environment"]) <= {"VLLM_ALLOW_RUNTIME_LORA_UPDATING", "HF_TOKEN"}
    # A base model can come from a mounted folder, which the trainer sees at the same path.
    assert any(v["target"] == "/models" and v["read_only"] for v in vllm["volumes"])
    assert any(v["target"] == "/models" for v in _services(compose)["trainer"]["volumes"])


def test_vllm_sees_the_adapters_read_only_at_the_path_the_bot_sends(compose):
    services = _services(compose)
    vllm = services.get("vllm")
    if vllm is None:
        return
    data_dir = services["bot"]["environment"]["PERSONABOT_DATA_DIR"]
    # The path the trainer writes an adapter to, and that promotion and ModelSync send to vLLM.
    adapters = CoreSettings(_env_file=None, data_dir=Path(data_dir)).adapters_dir
    assert adapters.is_absolute()
    data_mount = next(v for v in services["bot"]["volumes"] if v["target"] == data_dir)
    mounts = [v for v in vllm["volumes"] if v["target"] == str(adapters)]
    assert len(mounts) == 1, f"vllm must mount the adapters folder at {adapters}"
    mount = mounts[0]
    assert mount["read_only"] is True
    assert mount["type"] == "volume" and mount["source"] == data_mount["source"]
    assert mount["volume"]["subpath"] == os.path.relpath(adapters, data_dir)
    assert services["trainer"]["environment"]["PERSONABOT_DATA_DIR"] == data_dir


def _as_written() -> dict:
    """The compose file's own services (`docker compose config` inlines env_file into environment)."""
    return _normalise_yaml(_interpolate(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")), {}))["services"]


def test_one_shared_data_volume_and_secrets_only_from_env_file(compose):
    services = _services(compose)
    written = _as_written()
    sources = set()
    for name in APP_SERVICES + ("migrate",):
        if name not in services:
            continue
        service = services[name]
        data_dir = service["environment"]["PERSONABOT_DATA_DIR"]
        mount = next(v for v in service["volumes"] if v["target"] == data_dir)
        assert mount["type"] == "volume" and not mount["read_only"], name
        sources.add(mount["source"])
        assert written[name]["env_file"] == [".env"], name
        for secret in SECRETS:
            assert secret not in written[name]["environment"], f"{name}: {secret} must come from .env, not the compose file"
    assert len(sources) == 1, f"one shared data volume, got {sources}"
    raw = COMPOSE.read_text(encoding="utf-8")
    assert not re.search(r"(TOKEN|API_KEY)\s*[:=]\s*['\"]?[A-Za-z0-9_\-.]{8,}", raw.replace("${HF_TOKEN:-}", ""))


def test_startup_order_waits_for_health(compose):
    services = _services(compose)
    for name in APP_SERVICES:
        if name not in services:
            continue
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        if "vllm" in services:
            assert deps["vllm"]["condition"] == "service_healthy", name
        else:
            assert "vllm" not in deps, name
    if "vllm" in services:
        assert services["vllm"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def _seconds(value) -> float:
    if isinstance(value, (int, float)):
        return float(value) / (1e9 if value > 10_000 else 1)  # compose config prints nanoseconds
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


def test_stop_grace_period_matches_the_shutdown_grace(compose):
    for name in APP_SERVICES:
        service = _services(compose).get(name)
        if service is None:
            continue
        grace = float(service["environment"]["PERSONABOT_SHUTDOWN_GRACE_S"])
        assert _seconds(service["stop_grace_period"]) == grace + 5, name
        assert service.get("init") is True, f"{name}: tini forwards SIGTERM and reaps subprocesses"


def test_every_compose_variable_is_documented_in_env_example():
    raw = COMPOSE.read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name in set(re.findall(r"\$\{([A-Z0-9_]+)", raw)):
        assert re.search(rf"^#?\s*{name}=", example, re.M), f"{name} is used by docker-compose.yml but not in .env.example"


# --- Dockerfile --------------------------------------------------------------------------------

def _stages() -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    current = None
    logical = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        logical += line.rstrip("\\").strip() + " "
        if line.rstrip().endswith("\\"):
            continue
        instruction, logical = logical.strip(), ""
        m = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", instruction, re.I)
        if m:
            current = m.group(1)
            stages[current] = [instruction]
        elif current is not None:
            stages[current].append(instruction)
    return stages


def test_dockerfile_targets():
    stages = _stages()
    assert {"bot", "trainer"} <= set(stages)
    assert list(stages)[-1] == "bot", "a plain `docker build .` gives the serving image"
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^ARG WITH_LOCAL=0$", text, re.M)
    assert re.search(r"^ARG TORCH_VERSION=2\.13\.0$", text, re.M)
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", text, re.M)
    build_bot = " ".join(stages["build-bot"])
    # Without WITH_LOCAL the bot image installs the base package only: no extras, no torch.
    assert re.search(r"else\s+pip install \.;", build_bot)
    assert '".[train]"' in " ".join(stages["build-trainer"])
    assert "torch==${TORCH_VERSION}" in " ".join(stages["build-trainer"])


def _stage_chain(stages, name):
    chain = [name]
    while True:
        m = re.match(r"FROM\s+(\S+)", stages[chain[-1]][0], re.I)
        if m.group(1) not in stages:
            return chain
        chain.append(m.group(1))


def test_images_run_as_non_root_and_copy_no_secrets():
    stages = _stages()
    for target in ("bot", "trainer"):
        instructions = [i for stage in reversed(_stage_chain(stages, target)) for i in stages[stage]]
        users = [i.split()[1] for i in instructions if i.upper().startswith("USER ")]
        assert users and users[-1] not in ("root", "0"), target
    for stage in stages.values():
        for instruction in stage:
            if instruction.upper().startswith(("COPY", "ADD")) and "--from" not in instruction:
                assert ".env" not in instruction and not re.search(r"\s\.\s", instruction + " ")
            assert not re.search(r"(TOKEN|API_KEY|SECRET)", instruction), instruction
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    for pattern in (".env", "data/", ".git/", ".venv/"):
        assert pattern in ignored
