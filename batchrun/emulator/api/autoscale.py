"""Pool autoscale routes: enable (evaluating the formula at once), disable, evaluate."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator.api.base import (
    Api,
    Call,
    check_keys,
    empty,
    endpoint,
    json_response,
    require,
    require_object,
    resource_headers,
)
from batchrun.emulator.api.pools import (
    DEFAULT_INTERVAL,
    apply_targets,
    pool_url,
    run_autoscale,
    validate_duration,
    writable_pool,
)
from batchrun.emulator.errors import BatchApiError, conflict
from batchrun.emulator.model import internal, touch
from batchrun.emulator.scheduler import autoscale


def enable_autoscale(api: Api, call: Call) -> Response:
    body = require_object(call.body or {}, "parameters")
    check_keys(body, ("autoScaleFormula", "autoScaleEvaluationInterval"))
    validate_duration(body, "autoScaleEvaluationInterval", 300)
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
            "autoScaleEvaluationInterval", pool.get("autoScaleEvaluationInterval", DEFAULT_INTERVAL)
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
        endpoint(api, "POST", "/pools/{poolId}/enableautoscale", enable_autoscale),
        endpoint(api, "POST", "/pools/{poolId}/disableautoscale", disable_autoscale),
        endpoint(api, "POST", "/pools/{poolId}/evaluateautoscale", evaluate_autoscale),
    ]
