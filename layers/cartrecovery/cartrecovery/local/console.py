"""The console page (``GET /_local/``): clock controls, report, email previews, outbox, and each cart's decision
log.

Rendered with Jinja2 and autoescaping (subjects, names and reasons come from stores and shoppers). Buttons
call the same ``/_local/`` JSON routes a script would, then reload the page.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2

from cartrecovery.clock import isoformat
from cartrecovery.email.overrides import flow_steps
from cartrecovery.local.demo import DEMO_STORE_ID
from cartrecovery.local.runtime import LocalRuntime
from cartrecovery.usecases.report import COLUMNS, build_report, comparison_sentence, lift_sentence, percent_text
from cartrecovery.usecases.templates import listed_variants

OUTBOX_LIMIT = 100
CARTS_LIMIT = 100

PAGE = """<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<title>cartrecovery local console</title>
<style>
 body { font: 14px/1.5 system-ui, sans-serif; margin: 1.5rem; color: #222; }
 h1 { font-size: 1.3rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 1.8rem 0 .5rem; }
 table { border-collapse: collapse; margin: .3rem 0 1rem; } td, th { border: 1px solid #ccc; padding: .2rem .5rem;
 text-align: left; vertical-align: top; } th { background: #f3f3f3; } .num { text-align: right; }
 .muted { color: #777; } .err { color: #b00020; } code { font-size: 12px; } button { margin: 0 .2rem .2rem 0; }
 details { margin: .4rem 0; } summary { cursor: pointer; }
</style>
</head>
<body>
<h1>cartrecovery local console</h1>
<p>Store <strong>{{ store_name }}</strong> (<code>{{ store_id }}</code>) &middot; virtual time
 <strong id="now">{{ now }}</strong> &middot; API <code>{{ base_url }}</code></p>
<p>Advance the clock:
 {% for label, seconds in advances %}<button data-advance="{{ seconds }}">+{{ label }}</button>{% endfor %}
 <span id="status" class="muted"></span></p>

<h2>Report</h2>
<table>
 <tr><th>flow</th><th>step</th><th>variant</th>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
 {% for row in report.rows %}
 <tr><td>{{ row.flow }}</td><td class="num">{{ row.step }}</td><td>{{ row.variant }}</td>
 {% for c in columns %}<td class="num">{{ row[c] }}</td>{% endfor %}</tr>
 {% else %}<tr><td colspan="{{ columns|length + 3 }}" class="muted">nothing sent yet</td></tr>{% endfor %}
 <tr><th colspan="3">total</th>{% for c in columns %}<th class="num">{{ report.totals[c] }}</th>{% endfor %}</tr>
</table>
{% if report.totals.revenue_other_currencies %}
<p id="other-currencies">Revenue of orders in other currencies (not in <code>revenue</code>):
 {% for currency, amount in report.totals.revenue_other_currencies.items() -%}
 {{ currency }} {{ amount }}{{ ", " if not loop.last }}
 {%- endfor %}</p>
{% endif %}
<p class="muted">{{ report["from"] }} to {{ report["to"] }}</p>
{% for flow in report.holdout %}
<h3>Holdout: {{ flow.flow }}</h3>
<table class="holdout">
 <tr><th>group</th><th>carts</th><th>converted</th><th>conversion rate</th><th>revenue</th>
 <th>revenue per cart</th></tr>
 {% for name, label in [("treated", "emailed"), ("holdout", "held out")] %}{% set g = flow[name] %}
 <tr><td>{{ label }}</td><td class="num">{{ g.carts }}</td><td class="num">{{ g.converted }}</td>
 <td class="num">{{ "-" if g.conversion_rate is none else "%.1f%%"|format(g.conversion_rate * 100) }}</td>
 <td class="num">{{ g.revenue }}</td>
 <td class="num">{{ "-" if g.revenue_per_cart is none else g.revenue_per_cart }}</td></tr>
 {% endfor %}
</table>
<p class="lift">{{ lift_sentence(flow.lift)|capitalize }}</p>
{% endfor %}
{% for test in report.ab_tests %}
<h3>A/B test: {{ test.flow }} step {{ test.step }}</h3>
<table class="ab-test">
 <tr><th>variant</th><th>sent</th><th>open rate</th><th>clicked</th><th>click rate</th><th>converted</th>
 <th>conversion rate</th><th>revenue</th><th>revenue per email</th></tr>
 {% for v in test.variants %}
 <tr><td>{{ v.variant }}{% if v.variant == test.control %} <span class="muted">(control)</span>{% endif %}</td>
 <td class="num">{{ v.sent }}</td><td class="num">{{ percent_text(v.open_rate) }}</td>
 <td class="num">{{ v.clicked }}</td><td class="num">{{ percent_text(v.click_rate) }}</td>
 <td class="num">{{ v.converted }}</td><td class="num">{{ percent_text(v.conversion_rate) }}</td>
 <td class="num">{{ v.revenue }}</td>
 <td class="num">{{ "-" if v.revenue_per_email is none else v.revenue_per_email }}</td></tr>
 {% endfor %}
</table>
{% for c in test.comparisons %}<p class="ab-comparison">{{ comparison_sentence(c, test.control) }}</p>{% endfor %}
{% endfor %}

<h2>Email preview</h2>
<p>Each step for a sample cart, with this store's settings and
 {% if uploaded %}its {{ uploaded }} uploaded template(s){% else %}the shipped templates{% endif %}:</p>
<ul id="previews">
 {% for p in previews %}<li>{{ p.flow }} step {{ p.step }}{% if p.variant %} variant {{ p.variant }}{% endif %}:
 {% for locale in p.locales %}<a href="{{ p.url }}&amp;locale={{ locale|urlencode }}" target="_blank"
 rel="noopener">{{ locale }}</a> (<a href="{{ p.url }}&amp;locale={{ locale|urlencode }}&amp;part=text"
 target="_blank" rel="noopener">text</a>, <a href="{{ p.url }}&amp;locale={{ locale|urlencode }}&amp;part=subject"
 target="_blank" rel="noopener">subject</a>){% if not loop.last %} &middot; {% endif %}{% endfor %}</li>
 {% else %}<li class="muted">no flow steps</li>{% endfor %}
</ul>

<h2>Outbox ({{ outbox_total }})</h2>
<table>
 <tr><th>sent at</th><th>to</th><th>subject</th><th>message</th><th>SES events</th></tr>
 {% for m in outbox %}
 <tr><td>{{ m.sent_at }}</td><td>{{ m.to|join(", ") }}</td><td>{{ m.subject }}</td>
 <td><a href="/_local/outbox/{{ m.message_id|urlencode }}.html" target="_blank" rel="noopener">view</a>
 <br><code class="muted">{{ m.message_id }}</code></td>
 <td>{% for kind in ses_kinds %}
 <button data-ses="{{ m.message_id }}" data-kind="{{ kind }}">{{ kind }}</button>{% endfor %}</td></tr>
 {% else %}<tr><td colspan="5" class="muted">no email sent yet</td></tr>{% endfor %}
</table>

<h2>Carts ({{ carts|length }})</h2>
{% for cart in carts %}
<details {% if loop.index <= 5 %}open{% endif %}>
<summary><code>{{ cart.cart_id }}</code> &middot; {{ cart.status }} &middot; {{ cart.customer.email or "no email" }}
 &middot; {{ cart.items }} item(s){% if cart.total is not none %}, {{ cart.total }} {{ cart.currency or "" }}{% endif %}
 &middot; last activity {{ cart.last_activity_at or "-" }}</summary>
<p>{% if cart.timer %}Next: {{ cart.timer.flow }} step {{ cart.timer.step }} at {{ cart.timer.due_at }}
 {% else %}<span class="muted">no step armed</span>{% endif %}
 {% for key, s in cart.steps.items() %} &middot; {{ key }}: {{ s.status }}
 {%- if s.reason %} ({{ s.reason }}){% endif %}{% endfor %}</p>
<table>
 <tr><th>at</th><th>action</th><th>flow</th><th>step</th><th>reason</th><th>until</th></tr>
 {% for d in cart.decisions %}
 <tr><td>{{ d.at }}</td><td>{{ d.action }}</td><td>{{ d.flow }}</td>
 <td class="num">{{ d.step if d.step is not none else "" }}</td>
 <td>{{ d.reason or "" }}</td><td>{{ d.until or "" }}</td></tr>
 {% else %}<tr><td colspan="6" class="muted">no decision yet</td></tr>{% endfor %}
</table>
</details>
{% else %}<p class="muted">No cart yet. Post an event, e.g.
 <code>.venv/bin/cartrecovery send-event --example cart --email taro@example.jp</code></p>
{% endfor %}

<h2>Schedules ({{ schedules|length }})</h2>
<table>
 <tr><th>due at</th><th>schedule</th><th>cart</th><th>failed attempts</th></tr>
 {% for s in schedules %}
 <tr><td>{{ s.due_at }}</td><td><code>{{ s.name }}</code></td>
 <td>{{ s.payload.get("cart_id") }} &middot; {{ s.payload.get("flow") }} step {{ s.payload.get("step") }}</td>
 <td class="num">{{ s.attempts }}</td></tr>
 {% else %}<tr><td colspan="4" class="muted">none armed</td></tr>{% endfor %}
</table>

{% if dead_letters %}
<h2 class="err">Dead-lettered schedules</h2>
<table><tr><th>schedule</th><th>due at</th><th>cart</th><th>error</th></tr>
 {% for f in dead_letters %}<tr><td><code>{{ f.schedule }}</code></td><td>{{ f.due_at }}</td>
 <td>{{ f.payload.get("cart_id") }} step {{ f.payload.get("step") }}</td>
 <td class="err">{{ f.error }}</td></tr>{% endfor %}
</table>
{% endif %}
{% if tracking_failures %}
<h2 class="err">SES events the tracking handler failed</h2>
<table><tr><th>at</th><th>kind</th><th>message</th><th>error</th></tr>
 {% for e in tracking_failures %}<tr><td>{{ e.at }}</td><td>{{ e.kind }}</td><td><code>{{ e.message_id }}</code></td>
 <td class="err">{{ e.error }}</td></tr>{% endfor %}
</table>
{% endif %}

<script>
const statusEl = document.getElementById("status");
async function post(url, body) {
  statusEl.textContent = "working...";
  const response = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                     body: JSON.stringify(body || {})});
  const data = await response.json().catch(() => ({}));
  if (!response.ok) { statusEl.textContent = (data.detail || data.title || response.status); return; }
  location.reload();
}
document.querySelectorAll("[data-advance]").forEach(b => b.addEventListener("click",
  () => post("/_local/clock/advance", {seconds: Number(b.dataset.advance)})));
document.querySelectorAll("[data-ses]").forEach(b => b.addEventListener("click",
  () => post("/_local/ses/" + encodeURIComponent(b.dataset.ses) + "/" + b.dataset.kind, {})));
</script>
</body>
</html>
"""

ADVANCES = (("1h", 3600), ("3h", 3 * 3600), ("1d", 86400), ("3d", 3 * 86400), ("7d", 7 * 86400))


@functools.cache
def _template() -> jinja2.Template:
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(PAGE)


def render_console(runtime: LocalRuntime, store_id: str = DEMO_STORE_ID) -> str:
    svc = runtime.services()
    store = svc.stores.get(store_id)
    zone = ZoneInfo(store.settings.timezone) if store else ZoneInfo("UTC")
    today = runtime.clock.now().astimezone(zone).date()
    report = build_report(svc.ledger, store_id, today - timedelta(days=400), today + timedelta(days=30))
    messages = runtime.outbox.messages()
    outbox = [m.to_json() for m in reversed(messages[-OUTBOX_LIMIT:])]
    runner = runtime.runner
    schedules = [
        {
            "name": s.name,
            "due_at": isoformat(s.due_at),
            "payload": s.payload(),
            "attempts": runner.attempts.get(s.name, 0),
        }
        for s in runner.pending()
    ]
    overrides = svc.stores.get_templates(store_id) if store else {}
    renderer = svc.renderer.with_overrides(overrides)
    # A step with A/B variants gets a line per variant: the shipped variants differ only in the subject,
    # which the HTML page does not show, hence the subject link on every line.
    previews = []
    for flow, step in flow_steps(renderer.templates_dir, overrides):
        if store is None or flow not in store.settings.flows:
            continue
        variants = listed_variants(store, flow, step)
        for variant in variants if len(variants) > 1 else (None,):
            query = {"store": store_id, "flow": flow, "step": step, **({"variant": variant} if variant else {})}
            previews.append(
                {
                    "flow": flow,
                    "step": step,
                    "variant": variant,
                    "url": "/_local/preview?" + urlencode(query),
                    "locales": renderer.available_locales(),
                }
            )
    data: dict[str, Any] = {
        "store_id": store_id,
        "previews": previews,
        "uploaded": len(overrides),
        "store_name": store.settings.name if store else store_id,
        "now": isoformat(runtime.clock.now()),
        "base_url": runtime.base_url,
        "advances": ADVANCES,
        "columns": COLUMNS,
        "report": report,
        "lift_sentence": lift_sentence,
        "comparison_sentence": comparison_sentence,
        "percent_text": percent_text,
        "outbox": outbox,
        "outbox_total": len(messages),
        "ses_kinds": ("delivery", "open", "click", "bounce", "complaint"),
        "carts": (runtime.carts_view(store_id) or [])[:CARTS_LIMIT],
        "schedules": schedules,
        "dead_letters": [f.to_json() for f in runner.dead_letters],
        "tracking_failures": [e.to_json() for e in runtime.ses.failures],
    }
    return _template().render(**data)
