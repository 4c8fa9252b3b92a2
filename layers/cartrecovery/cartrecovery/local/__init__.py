"""Local mode (CONTRACT §3): the whole product on one machine, no AWS account, no Docker.

The deployed Lambda handlers (``functions/*/app.py``) and the same adapters run against an in-process moto
server standing in for DynamoDB, EventBridge Scheduler and SES:

- ``config``: the environment it reads (``PORT``, the demo secrets, ``CARTRECOVERY_CLOCK_START``).
- ``clock``: the virtual clock (business time; ticks with real time, jumps on request).
- ``emulator``: moto, the AWS environment pointing at it, the tables, schedule group and SES identities.
- ``lambda_invoke``: loads each handler from its file and builds API Gateway events and Lambda contexts.
- ``gateway``: the public routes (``/v1/stores/...``, ``/u/...``) as API Gateway routes them.
- ``scheduler_runner``: fires due schedules into the send handler (moto stores them but never fires).
- ``outbox`` and ``ses_events``: what was sent, and SES events for it through the tracking handler.
- ``local_api`` and ``console``: the ``/_local/`` routes and the console page.
- ``runtime`` assembles it all; ``server`` is ``python -m cartrecovery.local``.

``resources`` (tables from ``template.yaml``) is shared with the tests and the operator tools.
"""
