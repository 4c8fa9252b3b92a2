"""Fires the emulator's due schedules, as EventBridge Scheduler would, into the send handler.

The emulator stores schedules but never fires them. A run lists the stack's schedule group, reads each
schedule's ``at(...)`` time in its ``ScheduleExpressionTimezone``, and, earliest first, invokes the send
handler with the schedule's ``Target.Input`` and then deletes the schedule (``ActionAfterCompletion:
DELETE``). It loops until nothing is due, because a send arms the next step, which may be due already.

``advance`` moves the virtual clock through the due times instead of jumping straight to the end: each
schedule fires with the clock at its own due time (Scheduler fires within a minute of it), so a three-day
advance sends step 1 at its hour, honours quiet hours and does not find step 1 "too late".

An invocation that raises is a function error: the schedule is kept and retried on the next run (the
background thread runs every second), and after ``max_attempts`` failures it is deleted and kept as
dead-lettered (in AWS: Lambda retries a failed invocation, then its on-failure destination, the scheduler
DLQ, keeps it), shown on the console.

The reconciliation sweep (``sweep``, the sweep function's handler) runs as in AWS every five minutes of
virtual time, at the ticks ``hh:00, hh:05, ...``, so a step whose schedule was lost (every invocation
failed, a claim was left behind) is re-armed locally too. While ``advance`` jumps ahead, a tick at which the
sweep cannot find anything is skipped rather than run (three days are 864 ticks): here schedules disappear
only when they fire or are dead-lettered, and what such a firing leaves behind is overdue by the sweep's
grace ``sweep_grace`` after it, so the first tick that late runs the sweep, exactly as the five-minute rate
would have. A schedule deleted by hand in the emulator is noticed at the next tick of real time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cartrecovery.clock import isoformat
from cartrecovery.local.clock import VirtualClock, check_seconds
from cartrecovery.usecases.reconcile import GRACE as SWEEP_GRACE

log = logging.getLogger("cartrecovery.local")

AT_EXPRESSION = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)\Z")
MAX_FIRINGS_PER_RUN = 100_000  # a guard against a handler that re-arms a due step forever
SWEEP_EVERY = timedelta(minutes=5)  # the sweep function's rate in template.yaml
_EPOCH = datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC"))


@dataclass(frozen=True)
class DueSchedule:
    name: str
    due_at: datetime
    target_arn: str
    input: str
    fingerprint: tuple[Any, ...]  # creation/modification dates: a re-created schedule is read again

    def payload(self) -> dict[str, Any]:
        value = json.loads(self.input) if self.input else {}
        return value if isinstance(value, dict) else {"input": value}


@dataclass
class Firing:
    name: str
    due_at: datetime
    fired_at: datetime
    payload: dict[str, Any]
    result: Any = None
    error: str | None = None
    attempt: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "schedule": self.name,
            "due_at": isoformat(self.due_at),
            "fired_at": isoformat(self.fired_at),
            "payload": self.payload,
            "result": self.result,
            "error": self.error,
            "attempt": self.attempt,
        }


@dataclass
class RunResult:
    fired: int = 0
    failed: int = 0
    firings: list[Firing] = field(default_factory=list)
    swept: int = 0  # sweep runs


def parse_at(expression: str, timezone: str | None) -> datetime | None:
    """The instant of a one-time ``at(yyyy-mm-ddThh:mm:ss)`` expression; None for rate/cron expressions."""
    match = AT_EXPRESSION.match(expression.strip())
    if match is None:
        return None
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=ZoneInfo(timezone or "UTC"))


class SchedulerRunner:
    def __init__(
        self,
        client: Any,
        group: str,
        clock: VirtualClock,
        invoke_send: Callable[[dict[str, Any]], Any],
        *,
        send_function_arn: str,
        after_invoke: Callable[[], None] | None = None,
        max_attempts: int = 3,
        sweep: Callable[[], Any] | None = None,
        sweep_grace: timedelta = SWEEP_GRACE,
    ) -> None:
        self.client = client
        self.group = group
        self.clock = clock
        self.invoke_send = invoke_send
        self.send_function_arn = send_function_arn
        self.after_invoke = after_invoke or (lambda: None)
        self.max_attempts = max_attempts
        self.attempts: dict[str, int] = {}
        self.dead_letters: deque[Firing] = deque(maxlen=200)
        self.history: deque[Firing] = deque(maxlen=200)
        self.sweep = sweep
        self.sweep_grace = sweep_grace
        self.sweeps: deque[dict[str, Any]] = deque(maxlen=50)  # recent sweep runs: time and result
        self._next_sweep = tick_after(clock.now())
        self._unswept: list[datetime] = []  # when firings deleted schedules, until a sweep has covered them
        self._sweep_more = False  # the last sweep hit its limit: run the next tick whatever happens
        self._cache: dict[str, DueSchedule] = {}
        self._unsupported: set[str] = set()
        self._lock = threading.Lock()  # one run at a time
        self._cache_lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- runs ----

    def run_due(self) -> RunResult:
        """Fire everything due at the current virtual time."""
        with self._lock:
            return self._run(None)

    def advance(self, seconds: float) -> tuple[datetime, RunResult]:
        """Move the clock ``seconds`` ahead, firing each schedule at its due time on the way."""
        with self._lock:
            target = self.clock.now() + timedelta(seconds=check_seconds(seconds))
            result = self._run(target)
            now = self.clock.advance_to(target)
            return now, result

    def _run(self, target: datetime | None) -> RunResult:
        result = RunResult()
        tried: set[str] = set()  # fired (or failed) in this run: a failed one waits for the next run
        for _ in range(MAX_FIRINGS_PER_RUN):
            horizon = target if target is not None else self.clock.now()
            due = [s for s in self.pending() if s.due_at <= horizon and s.name not in tried]
            if self._sweep_before(horizon, due[0].due_at if due else None, advancing=target is not None):
                result.swept += 1
                continue  # the sweep may have armed schedules: list them again
            if not due:
                break
            schedule = due[0]
            tried.add(schedule.name)
            if target is not None:
                self.clock.advance_to(schedule.due_at)
            firing = self._fire(schedule)
            result.firings.append(firing)
            result.fired += 1
            if firing.error is not None:
                result.failed += 1
        else:
            log.error("scheduler runner stopped after %d firings in one run", MAX_FIRINGS_PER_RUN)
        return result

    def _fire(self, schedule: DueSchedule) -> Firing:
        attempt = self.attempts.get(schedule.name, 0) + 1
        try:
            payload = schedule.payload()
        except ValueError:
            payload = {"input": schedule.input}
        firing = Firing(schedule.name, schedule.due_at, self.clock.now(), payload, attempt=attempt)
        try:
            if schedule.target_arn != self.send_function_arn:
                raise LookupError(f"no local function for target {schedule.target_arn}")
            if "input" in payload and len(payload) == 1:
                raise ValueError("schedule input is not a JSON object")
            firing.result = self.invoke_send(payload)
        except Exception as exc:  # a function error
            firing.error = f"{type(exc).__name__}: {exc}"
            log.warning("schedule %s failed (attempt %d): %s", schedule.name, attempt, firing.error)
        finally:
            self.after_invoke()
        self.history.append(firing)
        if firing.error is None or attempt >= self.max_attempts:
            self._unswept.append(firing.fired_at)
        if firing.error is None:
            self._delete(schedule.name)
            self.attempts.pop(schedule.name, None)
            action = (firing.result or {}).get("action") if isinstance(firing.result, dict) else None
            log.info("fired %s (%s) -> %s", schedule.name, _describe(payload), action)
        elif attempt >= self.max_attempts:
            self._delete(schedule.name)
            self.attempts.pop(schedule.name, None)
            self.dead_letters.append(firing)
            log.error("schedule %s dead-lettered after %d attempts: %s", schedule.name, attempt, firing.error)
        else:
            self.attempts[schedule.name] = attempt
        return firing

    def _sweep_before(self, horizon: datetime, next_fire: datetime | None, *, advancing: bool) -> bool:
        """Run the sweep at the next tick that comes before the next firing and within ``horizon``, if that
        tick needs it; True if it ran. Ticks that need no sweep are passed over."""
        if self.sweep is None:
            return False
        end = horizon if next_fire is None else min(horizon, next_fire - timedelta(microseconds=1))
        if not advancing or self._sweep_more:
            wanted: datetime | None = self._next_sweep
        elif self._unswept:
            wanted = max(self._next_sweep, tick_at_or_after(min(self._unswept) + self.sweep_grace))
        else:
            wanted = None
        if wanted is None or wanted > end:
            self._next_sweep = max(self._next_sweep, tick_after(end))
            return False
        if advancing:
            self.clock.advance_to(wanted)
        now = self.clock.now()
        self._next_sweep = tick_after(max(wanted, now))
        try:
            outcome = self.sweep()
        except Exception as exc:  # a function error: the next tick tries again
            log.warning("sweep failed: %s: %s", type(exc).__name__, exc)
            self.sweeps.append({"at": isoformat(now), "error": f"{type(exc).__name__}: {exc}"})
            return True
        outcome = outcome if isinstance(outcome, dict) else {}
        self._unswept = [f for f in self._unswept if f + self.sweep_grace > now]
        self._sweep_more = bool(outcome.get("more"))
        self.sweeps.append({"at": isoformat(now), "result": outcome})
        if outcome.get("rearmed") or outcome.get("cleared"):
            log.info("sweep at %s: %s", isoformat(now), outcome)
        return True

    def _delete(self, name: str) -> None:
        with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
            self.client.delete_schedule(Name=name, GroupName=self.group)
        with self._cache_lock:
            self._cache.pop(name, None)

    # ---- reading the group ----

    def pending(self) -> list[DueSchedule]:
        """Every enabled one-time schedule of the group, earliest due first."""
        summaries: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"GroupName": self.group}
        while True:
            page = self.client.list_schedules(**kwargs)
            summaries += page.get("Schedules", [])
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        with self._cache_lock:  # the console and /_local/schedules read the group from other threads
            return self._resolve(summaries)

    def _resolve(self, summaries: list[dict[str, Any]]) -> list[DueSchedule]:
        seen: set[str] = set()
        schedules: list[DueSchedule] = []
        for summary in summaries:
            name = str(summary["Name"])
            seen.add(name)
            if summary.get("State", "ENABLED") != "ENABLED":
                continue
            fingerprint = (summary.get("CreationDate"), summary.get("LastModificationDate"))
            cached = self._cache.get(name)
            if cached is None or cached.fingerprint != fingerprint:
                cached = self._read(name, fingerprint)
                if cached is None:
                    continue
                self._cache[name] = cached
            schedules.append(cached)
        for name in set(self._cache) - seen:
            del self._cache[name]
        return sorted(schedules, key=lambda s: (s.due_at, s.name))

    def _read(self, name: str, fingerprint: tuple[Any, ...]) -> DueSchedule | None:
        try:
            detail = self.client.get_schedule(Name=name, GroupName=self.group)
        except self.client.exceptions.ResourceNotFoundException:
            return None
        expression = str(detail.get("ScheduleExpression", ""))
        due = parse_at(expression, detail.get("ScheduleExpressionTimezone"))
        if due is None:
            if name not in self._unsupported:
                self._unsupported.add(name)
                log.warning("schedule %s: only at(...) expressions fire locally, not %r", name, expression)
            return None
        target = detail.get("Target") or {}
        return DueSchedule(name, due, str(target.get("Arn", "")), str(target.get("Input", "")), fingerprint)

    # ---- background ----

    def start(self, interval: float = 1.0) -> None:
        """Run every ``interval`` real seconds, so a running demo fires on its own."""

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.run_due()
                except Exception:  # the emulator stopping, a transient error: try again next tick
                    log.exception("scheduler run failed")

        self._thread = threading.Thread(target=loop, name="scheduler-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def tick_after(moment: datetime) -> datetime:
    """The first sweep tick strictly after ``moment``."""
    return _EPOCH + SWEEP_EVERY * ((moment - _EPOCH) // SWEEP_EVERY + 1)


def tick_at_or_after(moment: datetime) -> datetime:
    tick = tick_after(moment)
    return tick - SWEEP_EVERY if tick - SWEEP_EVERY == moment else tick


def _describe(payload: dict[str, Any]) -> str:
    return f"{payload.get('store_id')}/{payload.get('cart_id')} {payload.get('flow')} step {payload.get('step')}"
