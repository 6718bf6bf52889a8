"""Render the measured figures in docs/benchmarks.md and docs/reliability.md from bench/results/.

`python bench/report.py` rewrites every block between `<!-- report:NAME -->` and
`<!-- /report:NAME -->` in those two files from the JSON the benchmarks and tests wrote (see
bench/machine.py and tests/measurements.py), so no figure in a block is copied by hand. Each
figure names the CPU its file records; a file that records none says so, and a run that stopped
short of what it planned is marked partial. `--check` changes nothing and exits 1 when a block
differs from what the files give (or a block has no renderer).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS = [ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "reliability.md"]
BLOCK = re.compile(r"(<!-- report:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /report:(?P=name) -->)", re.DOTALL)


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def cpu(result: dict) -> str:
    machine = result.get("machine") or {}
    model = machine.get("cpu_model") or machine.get("cpu")
    if not model:
        return "CPU not recorded"
    flags = machine.get("cpu_flags")
    cores = machine.get("cpus") or machine.get("nproc")
    text = model + (f", {cores} cores" if cores else "")
    return text + (f" ({' '.join(flags)})" if flags else "")


def load_average(result: dict) -> str:
    machine = result.get("machine") or {}
    start = machine.get("load_average_at_start") or [machine.get("load_average_1m_before")]
    end = machine.get("load_average_at_end") or [machine.get("load_average_1m_after")]
    if start[0] is None:
        return "load not recorded"
    return f"load average {start[0]}" + (f" → {end[0]}" if end and end[0] is not None else "")


def missing(name: str, command: str) -> str:
    return f"_No `bench/results/{name}` yet: run `{command}`._\n"


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} ms"


# ---------------------------------------------------------------------------------------------
# docs/benchmarks.md


def marked_partial(value: object) -> bool:
    """True when the file marks any part of itself partial (`"partial": true` at any depth)."""
    if isinstance(value, dict):
        return value.get("partial") is True or any(marked_partial(item) for item in value.values())
    if isinstance(value, list):
        return any(marked_partial(item) for item in value)
    return False


def render_results_index() -> str:
    rows = ["| result file | measured | CPU | partial |", "|---|---|---|---|"]
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        when = str(result.get("measured_at", "–"))[:16].replace("T", " ")
        device = str((result.get("machine") or {}).get("device", ""))
        where = cpu(result) + (f"; {device}" if device.startswith("cuda") else "")
        rows.append(f"| `{path.name}` | {when} | {where} | {'**partial**' if marked_partial(result) else 'no'} |")
    return "\n".join(rows) + "\n"


def render_import_rate() -> str:
    result = load("import_rate.json")
    if result is None or "parallel" not in result:
        return missing("import_rate.json", ".venv/bin/python bench/import_rate.py")
    sequential, parallel = result["sequential"], result["parallel"]
    stages = result["stage_ms_per_image"]
    pure = result["cpu_part_images_per_second"]
    lines = [
        (
            f"{cpu(result)}, {load_average(result)}, measured {result['measured_at'][:16].replace('T', ' ')} UTC; "
            f"{result['images']} images × {result['rounds']} rounds per mode, alternating; {result['database']}."
        ),
        "",
        "| import | workers | images/s (wall) | images per CPU second | vs sequential |",
        "|---|---|---|---|---|",
        (f"| sequential | 1 | {sequential['images_per_second']} | {sequential['images_per_cpu_second']} | 1.00× |"),
        (
            f"| parallel (threads) | {parallel['workers']} | **{parallel['images_per_second']}** "
            f"| {parallel['images_per_cpu_second']} | **{result['parallel_to_sequential']:.2f}×** |"
        ),
        "",
        (
            f"CPU part alone ({pure['images']} images, images/s): one after another {pure['one_after_another']}, "
            f"{pure['workers']} threads {pure['threads']}, {pure['workers']} spawned processes {pure['processes']}. "
            f"Per image: face detection {ms(stages['face_detection'])}, decode + re-encode "
            f"{ms(stages['decode_reencode'])}, thumbnail {ms(stages['thumbnail'])}; faces found "
            f"{result['faces_found_fraction']:.0%}. Target {result['target_images_per_second']:.0f} images/s: "
            f"{'met' if result['meets_target'] else '**not met**'} by the parallel import."
        ),
    ]
    return "\n".join(lines) + "\n"


def server_cpu(measured: dict) -> str:
    text = ms(measured["server_cpu_ms_per_step"])
    if "server_system_cpu_ms_per_step" in measured:
        text += (
            f" ({measured['server_user_cpu_ms_per_step']:.1f} user + "
            f"{measured['server_system_cpu_ms_per_step']:.1f} system)"
        )
    return text


def render_queue() -> str:
    result = load("queue.json")
    if result is None or "planned_steps" not in json.dumps(result):
        return missing("queue.json", ".venv/bin/python bench/labeling_queue.py")
    settings = result["settings"]
    lines = [
        (
            f"{cpu(result)}, {load_average(result)}, measured {result['measured_at'][:16].replace('T', ' ')} UTC; "
            f"{settings['clients']} clients, {settings['gunicorn_workers']} gunicorn workers, "
            f"{settings['warmup_per_client']} warm-up + {settings['steps_per_client']} measured steps per client"
            + (
                f" per turn, {settings['rounds_per_order']} turns per order (pooled)."
                if settings.get("rounds_per_order", 1) > 1
                else "."
            )
        ),
        "",
        (
            "| images | never labeled | load | steps done / planned | p50 step | p95 step | GET p50 | POST p50 | steps/s "
            "| server CPU per step | on an image another client scored | queue SQL (unlabeled / second observer) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, data in sorted(result["sizes"].items(), key=lambda item: int(item[0])):
        for load_name, m in data["loads"].items():
            done = f"{m['steps']} / {m['planned_steps']}" + (" **partial**" if m["partial"] else "")
            sql = m.get("queue_sql", {})
            shared = m.get("share_on_an_image_another_client_scored")
            shared_text = (
                "not counted" if shared is None else f"{shared:.1%} ({m['steps_on_an_image_another_client_scored']})"
            )
            lines.append(
                f"| {int(size):,} | {data['shape']['never_labeled']:.0%} | {load_name.replace('_', ' ')} | {done} "
                f"| {ms(m['p50_ms'])} | {ms(m['p95_ms'])} | {ms(m['get_p50_ms'])} | {ms(m['post_p50_ms'])} "
                f"| {m['steps_per_second']} | {server_cpu(m)} | {shared_text} "
                f"| {sql.get('unlabeled_step_ms', '–')} / {sql.get('second_observer_step_ms', '–')} ms |"
            )
    targets = result["targets"]
    lines.append("")
    for load_name in result["p50_ratio_large_to_small"]:
        met = targets["p95_met"][load_name]
        ratio_met = targets["ratio_met"][load_name]
        verdict = {True: "met", False: "**not met**", None: "not judged (partial run)"}
        lines.append(
            f"- {load_name.replace('_', ' ')}: p95 < {targets['p95_ms_below']:.0f} ms at every size: {verdict[met]}; "
            f"p50 largest / smallest size = {result['p50_ratio_large_to_small'][load_name]} "
            f"(target ≤ {targets['p50_ratio_at_most']}): {verdict[ratio_met]}."
        )
    if "server_cpu_met" in targets:
        largest = max(result["sizes"], key=int)
        figure = result["sizes"][largest]["loads"]["saturated"]["server_cpu_ms_per_step"]
        verdict = {True: "met", False: "**not met**", None: "not judged (partial run)"}
        lines.append(
            f"- web-worker CPU per step at {int(largest):,} images, saturated: {ms(figure)} "
            f"(target ≤ {targets['server_cpu_ms_per_step_at_most']:.0f} ms): {verdict[targets['server_cpu_met']]}."
        )
    return "\n".join(lines) + "\n"


def render_queue_orders() -> str:
    result = load("queue.json")
    if result is None or "order_to_baseline" not in result:
        return missing("queue.json", ".venv/bin/python bench/labeling_queue.py")
    baseline = result["settings"]["baseline_order"]
    lines = [
        (
            f"{cpu(result)}, {load_average(result)}, measured {result['measured_at'][:16].replace('T', ' ')} UTC; "
            f"the same run as the table above (its rows are the `{baseline}` order); each order takes "
            f"turns with {baseline}, each turn on freshly loaded data; images without a face: {result['settings']['images_without_a_face']}."
        ),
        "",
        (
            f"| order | images | load | steps done / planned | p50 step | p95 step | server CPU per step "
            f"| p50 / {baseline} | p95 / {baseline} | CPU / {baseline} | p50 per round: order; {baseline} "
            "| queue SQL (predicted / unpredicted step) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    spreads = []
    for order, by_size in result["order_to_baseline"].items():
        for size, loads in sorted(by_size.items(), key=lambda item: int(item[0])):
            for load_name, ratio in loads.items():
                m = result["sizes"][size]["other_orders"][order][load_name]
                base = result["sizes"][size]["loads"][load_name]
                rounds = [m.get("p50_ms_by_round", []), base.get("p50_ms_by_round", [])]
                spreads += [max(values) / min(values) for values in rounds if len(values) > 1 and min(values)]
                sql = m.get("queue_sql", {})
                done = f"{m['steps']} / {m['planned_steps']}" + (" **partial**" if m["partial"] else "")
                lines.append(
                    f"| {order} | {int(size):,} | {load_name.replace('_', ' ')} | {done} | {ms(m['p50_ms'])} "
                    f"| {ms(m['p95_ms'])} | {ms(m['server_cpu_ms_per_step'])} | **{ratio['p50_ms_ratio']}×** "
                    f"| **{ratio['p95_ms_ratio']}×** | {ratio['server_cpu_ms_per_step_ratio']}× "
                    f"| {' / '.join(f'{v:.0f}' for v in rounds[0])}; {' / '.join(f'{v:.0f}' for v in rounds[1])} ms "
                    f"| {sql.get('unlabeled_predicted_step_ms', '–')} / {sql.get('unlabeled_unpredicted_step_ms', '–')} ms |"
                )
    targets = result["targets"]
    verdict = {True: "met", False: "**not met**", None: "not judged (partial run)"}
    lines.append("")
    for order, met in targets["order_ratio_met"].items():
        lines.append(
            f"- {order}: p50 and p95 within {targets['order_to_baseline_ratio_at_most']}× of {baseline} at every "
            f"size and load: {verdict[met]}."
        )
    if spreads:
        lines.append(
            f"- noise floor of this run: the p50 of one order's rounds differed by up to {max(spreads):.2f}× "
            f"(median {sorted(spreads)[len(spreads) // 2]:.2f}×) between its turns."
        )
    return "\n".join(lines) + "\n"


def render_active_learning() -> str:
    result = load("active_learning.json")
    if result is None:
        return missing("active_learning.json", ".venv/bin/python bench/active_learning.py")
    run, reference = result["run"], result["reference"]
    lines = [
        (
            f"{cpu(result)}, {load_average(result)}, measured {result['measured_at'][:16].replace('T', ' ')} UTC, "
            f"{result['seconds']['total'] / 60:.1f} min in all; backbone {run['backbone']}, features "
            f"{run['feature_path']} at {run['image_size']} px (faces drawn at {run['drawn_size']} px)."
        ),
        "",
        (
            f"{run['patients']} synthetic patients × {run['images_per_patient']} images: {run['test_patients']} "
            f"locked test patients ({run['test_images']} images), a pool of {run['pool_images']} images "
            f"({run['pool_images_without_a_face']} without a face); {run['start_labels']} labeled at first, "
            f"{run['labels_per_round']} more per round, {run['rounds']} rounds; seeds {run['seeds']} (the arrival "
            f"order, the first labels and the training); head: {run['head']}, {run['cold_epochs']} epochs cold, "
            f"{run['warm_epochs']} warm each round."
        ),
        "",
        (
            f"Reference (a cold head on every pool label): macro AUROC {reference['macro_auroc_mean']:.3f} "
            f"(mean of the seeds); target {reference['target_share']:.0%} of it = {reference['target_macro_auroc']:.3f}."
        ),
        "",
        "| order | labels to reach the target (mean curve) | per seed | mean AUROC over the rounds | last round |",
        "|---|---|---|---|---|",
    ]
    for name, summary in result["strategies"].items():
        reached = summary["labels_to_95_percent_of_reference"]
        per_seed = ", ".join(
            "–" if value is None else str(value) for value in summary["labels_to_95_percent_by_seed"].values()
        )
        last = summary["mean_curve"][-1]
        lines.append(
            f"| {name} | {'not reached' if reached is None else f'**{reached}**'} | {per_seed} "
            f"| {summary['mean_macro_auroc_over_rounds']:.3f} | {last['macro_auroc']:.3f} ± {last['macro_auroc_sd']:.3f} "
            f"({last['labels']} labels) |"
        )
    lines += ["", f"Fewest labels to the target: {', '.join(result['fewest_labels']) or 'none reached it'}."]
    return "\n".join(lines) + "\n"


def render_labeling_step_cpu() -> str:
    result = load("labeling_step_cpu.json")
    if result is None:
        return missing("labeling_step_cpu.json", ".venv/bin/python bench/labeling_step_cpu.py")
    # The same script run on the code before the leaner step (its own defaults: a new database
    # connection per request), when that file is there.
    before = load("labeling_step_cpu_before.json")
    runs = [("now", result)] + ([("before", before)] if before else [])
    lines = []
    for name, run in runs:
        settings = run["settings"]
        lines.append(
            f"- {name}: {cpu(run)}, {load_average(run)}, measured {run['measured_at'][:16].replace('T', ' ')} UTC; "
            f"{settings['steps']} steps, database connections kept {settings['conn_max_age']} s "
            f"(health checks {'on' if settings['conn_health_checks'] else 'off'}): "
            f"**{ms(run['cpu_ms_per_step'])} of CPU per step**."
        )
    header = " | ".join(name for name, _run in runs)
    lines += ["", f"| part of the step | {header} |", "|---|" + "---|" * len(runs)]
    for section in ("cpu_ms_per_step_by_part", "cpu_ms_per_step_across_parts"):
        if section == "cpu_ms_per_step_across_parts":
            lines += ["", f"| across those parts | {header} |", "|---|" + "---|" * len(runs)]
        for part in result[section]:
            lines.append(f"| {part} | " + " | ".join(ms(run[section].get(part)) for _name, run in runs) + " |")
    lines.append("")
    for request in result["statements_per_request"]:
        counts = [
            f"{name}: {len(run['statements_per_request'][request]['statements'])} SQL statements "
            f"(+ {run['statements_per_request'][request]['transaction_control']} transaction control)"
            for name, run in runs
            if request in run["statements_per_request"]
        ]
        lines.append(f"- `{request}`: " + "; ".join(counts) + ".")
    return "\n".join(lines) + "\n"


def render_assess() -> str:
    result = load("assess.json")
    if result is None or "rounds" not in result:
        return missing("assess.json", ".venv/bin/python bench/assess.py")
    server = result["server_process"]
    ratio, heat = result["p50_ratio_without_heatmap_to_bare_forward"], result["p50_ratio_with_heatmap_to_bare_forward"]
    lines = [
        (
            f"{cpu(result)}, {load_average(result)}; model on {result['model']['device']}, server process with "
            f"{server['torch_threads']} torch threads, OpenMP wait policy {server['omp_wait_policy']}; the bare pass "
            f"{result['bare_forward_measured']}."
        ),
        "",
        (
            "| round | bare forward p50 / p95 | request p50 / p95 | ratio p50 | with heatmap p50 / p95 | ratio p50 "
            "| load average |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for number, one in enumerate(result["rounds"], start=1):
        bare, plain, explained = one["bare_forward"], one["request_without_heatmap"], one["request_with_heatmap"]
        lines.append(
            f"| {number} | {bare['p50_ms']} / {bare['p95_ms']} ms | {plain['p50_ms']} / {plain['p95_ms']} ms "
            f"| {one['p50_ratio_without_heatmap']}× | {explained['p50_ms']} / {explained['p95_ms']} ms "
            f"| {one['p50_ratio_with_heatmap']}× | {one['load_average_1m']} |"
        )
    concurrent = result["concurrent"]
    lines += [
        "",
        (
            f"Request / bare forward pass, p50, over {len(result['rounds'])} rounds of {result['rounds'][0]['bare_forward']['n']}: "
            f"median **{ratio['median']}×** (min {ratio['min']}×, max {ratio['max']}×); target ≤ {result['target_ratio']}×: "
            f"{'met' if result['meets_target'] else '**not met**'}. With heatmap: median {heat['median']}× "
            f"(min {heat['min']}×, max {heat['max']}×). {concurrent['clients']} clients at once: "
            f"{concurrent['assessments_per_second']} assessments/s (p50 {concurrent['p50_ms']} ms)."
        ),
    ]
    return "\n".join(lines) + "\n"


def render_ward() -> str:
    result = load("ward.json")
    if result is None or "measured" not in result:
        return missing("ward.json", ".venv/bin/python bench/ward.py")
    worker = result["worker"]
    lines = [
        (
            f"{cpu(result)}, {load_average(result)}; one worker process with {worker['torch_threads']} torch "
            f"threads, model at {result['image_size']} px on {result['model']['device']} "
            f"({result['model']['feature_path']} features), frames {result['frame_size'][0]}×{result['frame_size'][1]}, "
            f"interval {result['interval_seconds']} s. GPU: {result['gpu']}."
        ),
        "",
        "| beds | round median / max | per bed | share of the interval | read + detect | forward (one batch) | record | lag p50 / max | keeps up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for one in result["measured"]:
        middle = sorted(one["rounds"], key=lambda item: item["seconds"])[len(one["rounds"]) // 2]
        phases = middle["phases"]
        lag_p50 = sorted(item["lag_p50_s"] for item in one["rounds"])[len(one["rounds"]) // 2]
        lag_max = max(item["lag_max_s"] for item in one["rounds"])
        lines.append(
            f"| {one['beds']} | {one['round_seconds_median']} / {one['round_seconds_max']} s | "
            f"{round(1000 * one['seconds_per_bed'])} ms | {round(100 * one['share_of_interval'])} % | "
            f"{phases.get('read_and_detect', 0):.2f} s | {phases.get('forward', 0):.2f} s | {phases.get('record', 0):.2f} s | "
            f"{lag_p50} / {lag_max} s | {'yes' if one['keeps_up'] else '**no**'} |"
        )
    lines += [
        "",
        (
            f"Most beds kept at {result['interval_seconds']} s: **{result['most_beds_kept']}** "
            f"(estimated from the slowest cost per bed: {result['estimated_beds_per_worker']}); "
            f"target ≥ {result['target_beds']}: {'met' if result['meets_target'] else '**not met**'}."
        ),
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# docs/reliability.md


def measured_by(result: dict) -> str:
    return f"`{result['test']}`" if result.get("test") else "–"


def on(result: dict, *, database: str | None = None) -> str:
    broker = f" + {result['broker']}" if result.get("broker") else ""
    database = database or result.get("database", "?")
    return f"{database}{broker}; {cpu(result)}, {load_average(result)}; {result['measured_at'][:10]}"


def render_reliability() -> str:
    rows = ["| Item | Figure (measured) | Measured by | On |", "|---|---|---|---|"]
    labeling = load("reliability_labeling_load.json")
    if labeling:
        check, latency = labeling["check"], labeling["latency_ms"]
        rows.append(
            f"| Labeling load | {labeling['clients']} clinicians labeling at once for {labeling['seconds']} s against gunicorn "
            f"({labeling['gunicorn']['workers']} workers × {labeling['gunicorn']['threads']} threads): "
            f"**{labeling['labels_acknowledged']} labels acknowledged, {check['stored']} rows stored: {check['lost']} lost, "
            f"{check['acknowledged_twice']} duplicated, {check['image_counter_mismatches']} queue-counter mismatches**; "
            f"{labeling['labels_per_second']} labels/s; latency p50 {latency['p50']} ms, p95 {latency['p95']} ms; "
            f"answers {labeling['statuses']} | {measured_by(labeling)} | {on(labeling)} |"
        )
    bench_load = load("load.json")
    if bench_load and (bench_load.get("machine") or {}).get("cpu_model"):
        check = bench_load["check"]
        rows.append(
            f"| Labeling load (benchmark) | {bench_load['clients']} clinicians for {bench_load['seconds']} s: "
            f"**{bench_load['labels_acknowledged']} acknowledged, {check['stored']} stored, {check['lost']} lost, "
            f"{check['acknowledged_twice']} duplicated**; {bench_load['labels_per_second']} labels/s; p50 "
            f"{bench_load['latency_ms']['p50']} ms, p95 {bench_load['latency_ms']['p95']} ms | `{bench_load['command']}` "
            f"| postgresql; {cpu(bench_load)} |"
        )
    restart = load("reliability_postgres_restart.json")
    if restart:
        report, fault = restart["load"], restart["load"]["fault"]
        check = report["check"]
        rows.append(
            f"| PostgreSQL restart while labeling | {report['clients']} clinicians for {report['seconds']} s, PostgreSQL "
            f"stopped (fast) {restart['stopped_at_second']} s in and started {restart['down_seconds']} s later "
            f"(outage measured {fault['start']}–{fault['end']} s): answers before {fault['before']}, during "
            f"{fault['during']}, after {fault['after']}; **{report['connection_errors']} dropped connections**; "
            f"**{check['acknowledged']} acknowledged, {check['stored']} stored, {check['lost']} lost, "
            f"{check['acknowledged_twice']} duplicated** | {measured_by(restart)} (its own PostgreSQL cluster on a "
            f"spare port) | {on(restart, database='postgresql (the test’s own cluster)')} |"
        )
    broker = load("reliability_broker_down.json")
    if broker:
        rows.append(
            f"| Broker down when a run starts | `POST /api/training-runs/` answered **{broker['status_while_down']}** "
            f'with "{broker["message_while_down"]}"; when the broker returned the reaper\'s pass did '
            f"{broker['reaped_when_back']}, and after a second pass the `training` queue held "
            f"**{broker['training_queue_messages_after_two_passes']} message** | {measured_by(broker)} | {on(broker)} |"
        )
    for name, how in (("reliability_worker_killed.json", "the test polling the reaper"),
                      ("reliability_worker_killed_beat.json", "beat on a default worker")):  # fmt: skip
        killed = load(name)
        if not killed:
            continue
        seen = killed.get(
            "seconds_from_kill_to_reaper_seeing_it", killed.get("seconds_from_kill_to_run_sent_again_by_beat")
        )
        rows.append(
            f"| Worker killed mid-run ({how}) | training worker SIGKILLed at epoch {killed['killed_at_epoch']}; "
            f"heartbeat stale after {killed['stale_seconds']:g} s; the lost worker was noticed and the run sent "
            f"again **{seen} s** after the kill; resumed from epoch {killed['resumed_from_epoch']} and ended "
            f"{killed['status']} with **attempts = {killed['attempts']} and {killed['model_versions']} model "
            f"version** | {measured_by(killed)} | {on(killed)} |"
        )
    for name, when in (("reliability_training_cancel_during_epochs.json", "while epochs run"),
                       ("reliability_training_cancel_during_evaluation.json", "while the run evaluates")):  # fmt: skip
        cancel = load(name)
        if cancel:
            rows.append(
                f"| Cancelling a training run ({when}) | from the cancel request to the run's row saying cancelled: "
                f"**{cancel['seconds_from_cancel_to_cancelled']} s** | {measured_by(cancel)} | {on(cancel)} |"
            )
    for name in sorted(path.name for path in RESULTS.glob("suite_*.json")):
        suite = load(name)
        tests = suite["tests"]
        rows.append(
            f"| Whole test suite on a busy machine | {tests['passed']} passed, {tests['failed']} failed, "
            f"{tests['errors']} errors, {tests['skipped']} skipped in {suite['wall_seconds'] / 60:.1f} min, with "
            f"{suite['load_processes']} spinning processes of `bench/busy.py` started alongside (1-min load average mean "
            f"{suite['load_average_1m']['mean']}, max {suite['load_average_1m']['max']}) | "
            f"`bench/suite_under_load.py --name {suite['name']}"
            f"{' -- ' + ' '.join(suite['pytest_args']) if suite.get('pytest_args') else ''}` | "
            f"{suite['database']} + {suite['broker']}; {cpu(suite)}; {suite['measured_at'][:10]}"
            f"{', commit ' + suite['commit'] if suite.get('commit') else ''} |"
        )
    if len(rows) == 2:
        return "_No reliability results yet: run `bench/suite_under_load.py` (it sets PAINSITE_RESULTS_DIR)._\n"
    return "\n".join(rows) + "\n"


def render_time_to_table() -> str:
    runs = [(name, load(name)) for name in ("time_to_table_features_off.json", "time_to_table.json")]
    runs = [(name, result) for name, result in runs if result is not None]
    if not runs:
        return missing("time_to_table.json", ".venv/bin/python bench/time_to_table.py")
    rows = [
        "| run | features as images arrive | images | import | train | table | total | target | "
        "features computed by train / cached | CPU, load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in runs:
        phases = result["phase_seconds"]
        scale = "" if result["full_size"] else " **(scaled down: partial)**"
        computed, cached = result.get("train_features_computed"), result.get("train_features_cached")
        rows.append(
            f"| `{name}` {result['measured_at'][:16].replace('T', ' ')} UTC "
            f"| {'on' if result.get('features_on_arrival') else 'off'} | {result['images']:,}{scale} "
            f"| {phases['import']:.0f} s | {phases['train']:.0f} s | {phases['table']:.0f} s "
            f"| **{result['total_seconds']:.0f} s** | < {result['target_seconds']:.0f} s ({result['target_kind']}): "
            f"{'met' if result['meets_target'] else '**not met**'} "
            f"| {'–' if computed is None else f'{computed:,} / {cached:,}'} | {cpu(result)}, {load_average(result)} |"
        )
    backbones = sorted({result["backbone"] for _, result in runs})
    rows += ["", f"Backbone: {', '.join(backbones)} (random-init: no ImageNet weights on that machine)."]
    return "\n".join(rows) + "\n"


def render_queue_order_step_cpu() -> str:
    """labeling_step_cpu.py run in turns on the code before and after the queue orders."""
    folder = RESULTS / "queue_order_step_cpu"
    runs = sorted(folder.glob("*.json")) if folder.exists() else []
    if not runs:
        return missing("queue_order_step_cpu/*.json", ".venv/bin/python bench/labeling_step_cpu.py (before and after)")
    lines, means = [], {}
    for path in sorted(runs, key=lambda p: json.loads(p.read_text())["measured_at"]):
        run = json.loads(path.read_text())
        side = path.stem.split("_")[0]
        means.setdefault(side, []).append(run["cpu_ms_per_step"])
        statements = run["statements_per_request"]
        counts = ", ".join(f"{request} {len(found['statements'])}" for request, found in statements.items())
        lines.append(
            f"- {side} ({path.name}): {cpu(run)}, {load_average(run)}, measured "
            f"{run['measured_at'][:16].replace('T', ' ')} UTC; {run['settings']['steps']} steps: "
            f"**{ms(run['cpu_ms_per_step'])} of CPU per step**; SQL statements: {counts}."
        )
    if {"before", "after"} <= set(means):
        before, after = (sum(means[side]) / len(means[side]) for side in ("before", "after"))
        verdict = "met" if after <= 1.2 * before else "not met"
        lines.append(f"- mean after / mean before: **{after / before:.2f}×** (target: within 1.2×): {verdict}.")
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[], str]] = {
    "queue_order_step_cpu": render_queue_order_step_cpu,
    "time_to_table": render_time_to_table,
    "results_index": render_results_index,
    "import_rate": render_import_rate,
    "queue": render_queue,
    "queue_orders": render_queue_orders,
    "active_learning": render_active_learning,
    "labeling_step_cpu": render_labeling_step_cpu,
    "assess": render_assess,
    "ward": render_ward,
    "reliability": render_reliability,
}


def render(text: str) -> tuple[str, list[str]]:
    unknown: list[str] = []

    def block(match: re.Match) -> str:
        renderer = RENDERERS.get(match["name"])
        if renderer is None:
            unknown.append(match["name"])
            return match[0]
        return match[1] + renderer() + match[4]

    return BLOCK.sub(block, text), unknown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is out of date")
    args = parser.parse_args()
    stale = []
    for doc in DOCS:
        text = doc.read_text()
        rendered, unknown = render(text)
        if unknown:
            print(f"{doc.relative_to(ROOT)}: no renderer for block(s) {', '.join(unknown)}", file=sys.stderr)
            return 1
        if rendered != text:
            stale.append(doc)
            if not args.check:
                doc.write_text(rendered)
    for doc in stale:
        print(f"{doc.relative_to(ROOT)}: {'out of date' if args.check else 'rewritten'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
