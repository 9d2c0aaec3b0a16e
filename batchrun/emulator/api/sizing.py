"""Pool sizing routes: resize, stop resize, and autoscale enable (evaluating at once), disable, evaluate."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator.api.base import (
    Api,
    Call,
    check_enum,
    check_int_range,
    check_keys,
    empty,
    endpoint,
    json_response,
    optional,
    require,
    require_object,
    resource_headers,
)
from batchrun.emulator.api.pool_specs import apply_targets, run_autoscale, set_allocation_state
from batchrun.emulator.api.pools import pool_url, writable_pool
from batchrun.emulator.api.specs import AUTOSCALE_INTERVAL_MAX, check_duration
from batchrun.emulator.errors import BatchApiError, conflict
from batchrun.emulator.model import internal, touch
from batchrun.emulator.scheduler import autoscale

DEALLOCATION = ("requeue", "terminate", "taskcompletion", "retaineddata")


def resize_pool(api: Api, call: Call) -> Response:
    body = require_object(call.body or {}, "resizeOptions")
    check_keys(
        body, ("targetDedicatedNodes", "targetLowPriorityNodes", "resizeTimeout", "nodeDeallocationOption")
    )
    dedicated = check_int_range(body, "targetDedicatedNodes", 0, 1000)
    low_priority = check_int_range(body, "targetLowPriorityNodes", 0, 1000)
    option = check_enum(body, "nodeDeallocationOption", DEALLOCATION) or "requeue"
    check_duration(body, "resizeTimeout", minimum_seconds=300)
    with api.model.lock:
        pool = writable_pool(api, call, call.params["poolId"])
        if pool.get("enableAutoScale"):
            raise conflict(
                "AutoScalingEnabled",
                "The pool has autoscale enabled; disable autoscale before resizing it.",
                {"PoolId": pool["id"]},
            )
        if pool["allocationState"] != "steady":
            raise conflict(
                "PoolNotSteady",
                "The pool is being resized; stop the resize or wait until allocationState is steady.",
                {"PoolId": pool["id"]},
            )
        apply_targets(
            pool,
            pool.get("targetDedicatedNodes", 0) if dedicated is None else dedicated,
            pool.get("targetLowPriorityNodes", 0) if low_priority is None else low_priority,
            option,
        )
        if "resizeTimeout" in body:
            pool["resizeTimeout"] = body["resizeTimeout"]
        touch(pool)
        api.model.save_pool(pool)
        api.model.notify()
        return empty(202, resource_headers(pool, pool_url(call, pool["id"])))


def stop_resize(api: Api, call: Call) -> Response:
    with api.model.lock:
        pool = writable_pool(api, call, call.params["poolId"])
        if pool["allocationState"] == "resizing":
            set_allocation_state(pool, "stopping")
            touch(pool)
            api.model.save_pool(pool)
            api.model.notify()
        return empty(202, resource_headers(pool, pool_url(call, pool["id"])))


def enable_autoscale(api: Api, call: Call) -> Response:
    body = require_object(call.body or {}, "parameters")
    check_keys(body, ("autoScaleFormula", "autoScaleEvaluationInterval"))
    check_duration(
        body, "autoScaleEvaluationInterval", minimum_seconds=300, maximum_seconds=AUTOSCALE_INTERVAL_MAX
    )
    optional(body, "autoScaleFormula", str)
    with api.model.lock:
        pool = writable_pool(api, call, call.params["poolId"])
        if pool["allocationState"] != "steady" and not pool.get("enableAutoScale"):
            raise conflict(
                "PoolNotSteady",
                "Autoscale cannot be enabled while the pool is resizing.",
                {"PoolId": pool["id"]},
            )
        formula = body.get("autoScaleFormula") or pool.get("autoScaleFormula")
        if not formula:
            raise BatchApiError(
                400,
                "MissingRequiredProperty",
                "A required property was not specified in the request body.",
                {"PropertyName": "autoScaleFormula"},
            )
        pool["autoScaleFormula"] = formula
        pool["autoScaleEvaluationInterval"] = body.get(
            "autoScaleEvaluationInterval", pool.get("autoScaleEvaluationInterval", autoscale.DEFAULT_INTERVAL)
        )
        run, chosen = run_autoscale(api, pool, formula)
        pool["enableAutoScale"] = True
        pool["autoScaleRun"] = run
        if chosen:
            apply_targets(pool, *chosen)
        internal(pool)["nextAutoScale"] = autoscale.next_evaluation(pool)
        touch(pool)
        api.model.save_pool(pool)
        api.model.notify()
        return empty(200, resource_headers(pool, pool_url(call, pool["id"])))


def disable_autoscale(api: Api, call: Call) -> Response:
    with api.model.lock:
        pool = writable_pool(api, call, call.params["poolId"])
        pool["enableAutoScale"] = False
        for name in ("autoScaleFormula", "autoScaleEvaluationInterval", "autoScaleRun"):
            pool.pop(name, None)
        internal(pool).pop("nextAutoScale", None)
        touch(pool)
        api.model.save_pool(pool)
        return empty(200, resource_headers(pool, pool_url(call, pool["id"])))


def evaluate_autoscale(api: Api, call: Call) -> Response:
    body = require_object(call.body or {}, "parameters")
    check_keys(body, ("autoScaleFormula",))
    formula = require(body, "autoScaleFormula")
    with api.model.lock:
        pool = writable_pool(api, call, call.params["poolId"])
        if not pool.get("enableAutoScale"):
            raise conflict(
                "AutoScaleNotEnabled",
                "Autoscale is not enabled on this pool; enable it before evaluating a formula.",
                {"PoolId": pool["id"]},
            )
        run, _ = run_autoscale(api, pool, formula)
        return json_response(run, headers=resource_headers(pool, pool_url(call, pool["id"])))


def routes(api: Api) -> list[Route]:
    return [
        endpoint(api, "POST", "/pools/{poolId}/resize", resize_pool),
        endpoint(api, "POST", "/pools/{poolId}/stopresize", stop_resize),
        endpoint(api, "POST", "/pools/{poolId}/enableautoscale", enable_autoscale),
        endpoint(api, "POST", "/pools/{poolId}/disableautoscale", disable_autoscale),
        endpoint(api, "POST", "/pools/{poolId}/evaluateautoscale", evaluate_autoscale),
    ]
