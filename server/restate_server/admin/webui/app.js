// The web UI at /ui/: reads the admin API it is served by (same origin, one level up) and fills
// four tables.
// Text from the server (service names, state values, failure messages) is only ever set as
// textContent, never parsed as HTML.
"use strict";

const INVOCATIONS_SQL =
  "SELECT id, target, status, created_at, last_failure FROM sys_invocation ORDER BY created_at DESC LIMIT 100";
const STATE_SQL =
  "SELECT service_name, service_key, key, value_utf8 FROM state ORDER BY service_name, service_key, key LIMIT 100";

async function getJson(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function query(sql) {
  const response = await fetch("../query", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query: sql }),
  });
  if (!response.ok) throw new Error(`query: ${response.status} ${await response.text()}`);
  return (await response.json()).rows;
}

function fill(tableId, rows, columns) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren();
  if (rows.length === 0) {
    const cell = document.createElement("td");
    cell.colSpan = columns;
    cell.className = "empty";
    cell.textContent = "none";
    body.appendChild(document.createElement("tr")).appendChild(cell);
    return;
  }
  for (const values of rows) {
    const row = body.appendChild(document.createElement("tr"));
    for (const value of values) {
      row.appendChild(document.createElement("td")).textContent = value == null ? "" : String(value);
    }
  }
}

function endpoint(deployment) {
  return deployment.uri || deployment.arn || deployment.url || "";
}

async function refresh() {
  const status = document.getElementById("status");
  status.className = "";
  status.textContent = "loading…";
  try {
    const [version, services, deployments, invocations, state] = await Promise.all([
      getJson("../version"),
      getJson("../services"),
      getJson("../deployments"),
      query(INVOCATIONS_SQL),
      query(STATE_SQL),
    ]);
    document.getElementById("version").textContent = `server ${version.version}`;
    fill(
      "services",
      services.services.map((s) => [s.name, s.ty, (s.handlers || []).map((h) => h.name).join(", "), s.revision, s.deployment_id]),
      5,
    );
    fill(
      "deployments",
      deployments.deployments.map((d) => [d.id, endpoint(d), (d.services || []).map((s) => s.name).join(", "), d.created_at]),
      4,
    );
    fill("invocations", invocations.map((i) => [i.id, i.target, i.status, i.created_at, i.last_failure]), 5);
    fill("state", state.map((s) => [s.service_name, s.service_key, s.key, s.value_utf8]), 4);
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    status.className = "error";
    status.textContent = String(error.message || error);
  }
}

document.getElementById("refresh").addEventListener("click", refresh);
refresh();
