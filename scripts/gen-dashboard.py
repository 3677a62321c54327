#!/usr/bin/env python3
"""Writes Deploy/dashboards/loupe.json, the Grafana dashboard for Loupe's metrics.

    python3 scripts/gen-dashboard.py          # regenerate
    python3 scripts/gen-dashboard.py --check  # exit 1 if the committed JSON is out of date (CI)

The dashboard is generated so that its queries stay few, consistent, and easy to review; edit
this file, not the JSON. Metric names are those the service exports (scripts/validate_deploy.py
checks each against the sources and, in scripts/runtime-contract.sh, a live /metrics scrape).
"""
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "Deploy" / "dashboards" / "loupe.json"

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", instance=~"$instance"'
INFER_ROUTES = 'route=~"/predict|/v2/models/.+/infer"'
NOT_PROBES = 'route!~"/health.*|/v2/health.*|/metrics"'
RI = "$__rate_interval"

_next_id = 0


def panel(title, kind, targets, x, y, w=8, h=8, unit=None, description="", **extra):
    global _next_id
    _next_id += 1
    p = {
        "id": _next_id,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend,
             **({"instant": True, "format": "table"} if kind == "table" else {})}
            for i, (expr, legend) in enumerate(targets)
        ],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}
    for k, v in extra.items():
        if k == "thresholds":
            p["fieldConfig"]["defaults"]["thresholds"] = {
                "mode": "absolute",
                "steps": [{"color": c, "value": val} for val, c in v],
            }
        elif k == "defaults":
            p["fieldConfig"]["defaults"].update(v)
        else:
            p[k] = v
    return p


def row(title, y):
    global _next_id
    _next_id += 1
    return {"id": _next_id, "type": "row", "title": title, "collapsed": False,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}


def quantile(q, metric, selector):
    return (f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{selector}}}[{RI}])))")


def build():
    panels = []
    y = 0
    panels.append(row("Traffic", y)); y += 1
    panels += [
        panel("Requests per second by route", "timeseries",
              [(f"sum by (route) (rate(loupe_http_requests_total{{{SEL}}}[{RI}]))", "{{route}}")],
              0, y, unit="reqps"),
        panel("Error ratio (non-probe requests)", "timeseries",
              [(f'sum(rate(loupe_http_requests_total{{{SEL}, code=~"5..", {NOT_PROBES}}}[{RI}])) / '
                f'sum(rate(loupe_http_requests_total{{{SEL}, {NOT_PROBES}}}[{RI}]))', "5xx"),
               (f'sum(rate(loupe_http_requests_total{{{SEL}, code=~"4..", {NOT_PROBES}}}[{RI}])) / '
                f'sum(rate(loupe_http_requests_total{{{SEL}, {NOT_PROBES}}}[{RI}]))', "4xx")],
              8, y, unit="percentunit", description="Alert LoupeHighErrorRatio fires above 5% 5xx for 5 minutes.",
              thresholds=[(None, "green"), (0.05, "red")]),
        panel("Inference latency (/predict, v2 infer)", "timeseries",
              [(quantile(0.5, "loupe_http_request_duration_seconds", f"{SEL}, {INFER_ROUTES}"), "p50"),
               (quantile(0.9, "loupe_http_request_duration_seconds", f"{SEL}, {INFER_ROUTES}"), "p90"),
               (quantile(0.99, "loupe_http_request_duration_seconds", f"{SEL}, {INFER_ROUTES}"), "p99")],
              16, y, unit="s", description="Alert LoupeHighLatencyP99 fires above 250 ms p99 for 10 minutes."),
    ]
    y += 8
    panels += [
        panel("Responses by status code", "timeseries",
              [(f"sum by (code) (rate(loupe_http_requests_total{{{SEL}, {NOT_PROBES}}}[{RI}]))", "{{code}}")],
              0, y, unit="reqps"),
        panel("Requests in flight", "timeseries",
              [(f"sum by (instance) (loupe_http_requests_in_flight{{{SEL}}})", "{{instance}}")],
              8, y, description="The per-pod signal for optional/hpa-inflight.yaml."),
        panel("Rejected requests by reason", "timeseries",
              [(f"sum by (reason) (rate(loupe_rejected_requests_total{{{SEL}}}[{RI}]))", "{{reason}}"),
               (f"sum by (reason) (rate(loupe_http_connection_rejections_total{{{SEL}}}[{RI}]))", "connection: {{reason}}")],
              16, y, unit="reqps", description="Requests refused by the service (queue_full feeds alert LoupeQueueSaturated) and connections refused or closed by the HTTP layer."),
    ]
    y += 8
    panels.append(row("Batching and inference", y)); y += 1
    panels += [
        panel("Batch size", "timeseries",
              [(f"sum(rate(loupe_batch_size_sum{{{SEL}}}[{RI}])) / sum(rate(loupe_batch_size_count{{{SEL}}}[{RI}]))", "mean"),
               (quantile(0.99, "loupe_batch_size", SEL), "p99")],
              0, y, w=6, unit="short"),
        panel("Queue depth (images waiting)", "timeseries",
              [(f"sum by (instance) (loupe_queue_depth{{{SEL}}})", "{{instance}}")],
              6, y, w=6, unit="short"),
        panel("Inference workers busy", "timeseries",
              [(f"sum by (instance) (loupe_inference_workers_busy{{{SEL}}})", "{{instance}}")],
              12, y, w=6, unit="short", description="Workers running a batch now; at inference.workers the queue grows."),
        panel("Queue wait and inference time", "timeseries",
              [(quantile(0.99, "loupe_queue_duration_seconds", SEL), "queue p99"),
               (quantile(0.99, "loupe_inference_duration_seconds", SEL), "inference p99"),
               (quantile(0.5, "loupe_inference_duration_seconds", SEL), "inference p50")],
              18, y, w=6, unit="s"),
    ]
    y += 8
    panels.append(row("Models", y)); y += 1
    panels += [
        panel("Ready", "stat",
              [(f"min(loupe_ready{{{SEL}}})", "ready")],
              0, y, w=4, h=6, description="1 when every selected instance answers /health/ready with 200 (alert LoupeNotReady).",
              thresholds=[(None, "red"), (1, "green")],
              defaults={"mappings": [{"type": "value", "options": {"0": {"text": "NOT READY"}, "1": {"text": "READY"}}}]}),
        panel("Start to ready", "stat",
              [(f"max(loupe_start_to_ready_seconds{{{SEL}}})", "slowest instance")],
              4, y, w=4, h=6, unit="s", description="Time from process start to the first ready state."),
        panel("Model versions serving", "table",
              [(f"max by (model, version, sha256) (loupe_model_info{{{SEL}, model=~\"$model\"}})", "")],
              8, y, w=10, h=6, transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}]),
        panel("Model reloads (last hour) by result", "stat",
              [(f"sum by (result) (increase(loupe_model_reloads_total{{{SEL}, model=~\"$model\"}}[1h]))", "{{result}}")],
              18, y, w=6, h=6, description="A failure keeps the previous version serving (alert LoupeModelReloadFailed)."),
    ]
    y += 6
    panels += [
        panel("Input drift (population stability index)", "timeseries",
              [(f"max by (model, feature) (loupe_drift_psi{{{SEL}, model=~\"$model\"}})", "{{model}} {{feature}}")],
              0, y, unit="short",
              description="PSI of live traffic against the training set: < 0.1 stable, 0.1–0.25 moderate, > 0.25 significant (alert LoupeInputDrift).",
              thresholds=[(None, "green"), (0.1, "yellow"), (0.25, "red")],
              defaults={"custom": {"thresholdsStyle": {"mode": "line"}}}),
        panel("Predictions per second by class", "timeseries",
              [(f"sum by (class) (rate(loupe_predictions_total{{{SEL}, model=~\"$model\"}}[{RI}]))", "{{class}}")],
              8, y, unit="short", defaults={"custom": {"stacking": {"mode": "percent"}, "fillOpacity": 60}}),
        panel("Prediction confidence", "timeseries",
              [(quantile(0.5, "loupe_prediction_confidence", f'{SEL}, model=~"$model"'), "p50"),
               (quantile(0.1, "loupe_prediction_confidence", f'{SEL}, model=~"$model"'), "p10"),
               (f'sum(rate(loupe_low_confidence_predictions_total{{{SEL}, model=~"$model"}}[{RI}])) / '
                f'sum(rate(loupe_predictions_total{{{SEL}, model=~"$model"}}[{RI}]))', "low-confidence share")],
              16, y, unit="percentunit"),
    ]
    y += 8
    panels += [
        panel("Mean intensity: live vs training", "timeseries",
              [(f"max by (model, source) (loupe_drift_mean_intensity{{{SEL}, model=~\"$model\"}})", "{{model}} {{source}}")],
              0, y, w=12, unit="percentunit", description="Mean pixel intensity of the drift window next to the training set's."),
        panel("Class share: live vs training", "timeseries",
              [(f"max by (model, class, source) (loupe_drift_class_share{{{SEL}, model=~\"$model\"}})", "{{class}} {{source}}")],
              12, y, w=12, unit="percentunit", description="Predicted class shares in the window (live) against the training priors."),
    ]
    y += 8
    panels.append(row("Ground truth (POST /feedback)", y)); y += 1
    panels += [
        panel("Live accuracy vs recorded test accuracy", "timeseries",
              [(f"max by (model, version) (loupe_live_accuracy{{{SEL}, model=~\"$model\", window=\"recent\"}})", "{{model}} v{{version}} live (recent)"),
               (f"max by (model, version) (loupe_live_accuracy{{{SEL}, model=~\"$model\", window=\"all\"}})", "{{model}} v{{version}} live (since start)"),
               (f"max by (model, version) (loupe_model_test_accuracy{{{SEL}, model=~\"$model\"}})", "{{model}} v{{version}} test")],
              0, y, unit="percentunit",
              description="Share of labelled predictions that were right, next to the accuracy recorded in the model file (alert LoupeLiveAccuracyBelowTest)."),
        panel("Labels received per second", "timeseries",
              [(f"sum by (model, version) (rate(loupe_feedback_total{{{SEL}, model=~\"$model\"}}[{RI}]))", "{{model}} v{{version}}")],
              8, y, unit="short"),
        panel("Calibration error (ECE)", "timeseries",
              [(f"max by (model, version) (loupe_live_calibration_error{{{SEL}, model=~\"$model\"}})", "{{model}} v{{version}}")],
              16, y, unit="percentunit", description="Expected calibration error of the top-1 confidences against the labels: 0 = confidences match accuracy."),
    ]
    y += 8
    panels += [
        panel("Live precision by class", "timeseries",
              [(f"max by (class) (loupe_live_precision{{{SEL}, model=~\"$model\"}})", "{{class}}")],
              0, y, w=12, unit="percentunit"),
        panel("Live recall by class", "timeseries",
              [(f"max by (class) (loupe_live_recall{{{SEL}, model=~\"$model\"}})", "{{class}}")],
              12, y, w=12, unit="percentunit"),
    ]
    y += 8
    panels.append(row("Safe promotion (promotion.mode shadow / canary)", y)); y += 1
    panels += [
        panel("Candidate vs serving: live accuracy", "timeseries",
              [(f"max by (model, version, role) (loupe_promotion_live_accuracy{{{SEL}, model=~\"$model\"}})", "{{model}} v{{version}} {{role}}")],
              0, y, unit="percentunit",
              description="Feedback accuracy of each side of a pair on the requests it predicted (answered or shadowed); the accuracy rule compares them."),
        panel("Candidate agreement with the serving version", "timeseries",
              [(f"max by (model, version) (loupe_promotion_agreement{{{SEL}, model=~\"$model\"}})", "{{model}} v{{version}}")],
              8, y, unit="percentunit", description="Share of compared images with the same top-1 class (promotion.min_agreement)."),
        panel("Promotion decisions", "timeseries",
              [(f"sum by (model, version, decision, reason) (increase(loupe_promotion_decisions_total{{{SEL}, model=~\"$model\"}}[{RI}]))", "{{model}} v{{version}} {{decision}} ({{reason}})")],
              16, y, unit="short", description="Promote / rollback decisions and the rule behind each (alert LoupePromotionRolledBack)."),
    ]
    y += 8
    panels += [
        panel("Shadow copies classified and dropped per second", "timeseries",
              [(f"sum by (model, version) (rate(loupe_shadow_inferences_total{{{SEL}, model=~\"$model\"}}[{RI}]))", "{{model}} v{{version}} classified"),
               (f"sum by (model) (rate(loupe_shadow_dropped_total{{{SEL}, model=~\"$model\"}}[{RI}]))", "{{model}} dropped (queue full)")],
              0, y, w=12, unit="reqps", description="The SCHED_IDLE shadow worker only gets idle CPU: many drops mean the evidence grows slowly, never that requests slowed."),
        panel("p99 forward pass: candidate vs serving", "timeseries",
              [(f"max by (model, version, role) (loupe_promotion_p99_seconds{{{SEL}, model=~\"$model\"}})", "{{model}} v{{version}} {{role}}")],
              12, y, w=12, unit="s", description="promotion.max_latency_ratio compares these."),
    ]
    y += 8
    panels.append(row("Process", y)); y += 1
    panels += [
        panel("CPU (cores)", "timeseries",
              [(f"sum by (instance) (rate(process_cpu_seconds_total{{{SEL}}}[{RI}]))", "{{instance}}")],
              0, y, w=6, unit="short"),
        panel("Resident memory", "timeseries",
              [(f"sum by (instance) (process_resident_memory_bytes{{{SEL}}})", "{{instance}}")],
              6, y, w=6, unit="bytes"),
        panel("Open connections", "timeseries",
              [(f"sum by (instance) (loupe_http_open_connections{{{SEL}}})", "{{instance}}")],
              12, y, w=6, unit="short", description="Capped by limits.max_connections."),
        panel("Open file descriptors", "timeseries",
              [(f"sum by (instance) (process_open_fds{{{SEL}}})", "{{instance}}"),
               (f"min by (instance) (process_max_fds{{{SEL}}})", "limit {{instance}}")],
              18, y, w=6, unit="short"),
    ]

    def var(name, query, label, include_all=True):
        return {"name": name, "label": label, "type": "query", "datasource": DS,
                "query": {"query": query, "refId": name}, "definition": query,
                "refresh": 2, "includeAll": include_all, "multi": True, "allValue": ".*",
                "current": {"selected": True, "text": "All", "value": "$__all"}, "sort": 1}

    return {
        "uid": "loupe",
        "title": "Loupe",
        "description": "Loupe model server: traffic, latency, batching, models, drift, ground truth, process.",
        "tags": ["loupe", "inference"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "",
        "graphTooltip": 1,
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1},
            var("job", "label_values(loupe_http_requests_total, job)", "Job"),
            var("instance", 'label_values(loupe_http_requests_total{job=~"$job"}, instance)', "Instance"),
            var("model", 'label_values(loupe_model_info{job=~"$job"}, model)', "Model"),
        ]},
        "annotations": {"list": [{
            "name": "Model reloads", "datasource": DS, "enable": True, "iconColor": "blue",
            "expr": f"changes(loupe_model_reloads_total{{{SEL}}}[1m]) > 0",
            "titleFormat": "reload {{model}}: {{result}}",
        }]},
        "panels": panels,
    }


def main():
    text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
    if sys.argv[1:] == ["--check"]:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date; run: python3 scripts/gen-dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
