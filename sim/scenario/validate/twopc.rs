//! Two-phase commits (`[[transaction]]`): a coordinator and its participants' calls.

use super::*;

/// Participants of one transaction at most.
const MAX_PARTICIPANTS: usize = 64;

/// The `[[transaction]]` definitions; each adds its calls to its coordinator as a hidden
/// endpoint (PREPAREs, then COMMITs, then ABORTs), so they get call sites, edges and links.
pub(super) fn build_transactions(
    cx: &mut Ctx,
    raw: &RawScenario,
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
    services: &mut [ServiceSpec],
    dests: &BTreeMap<String, (Dest, Option<ServiceId>)>,
    pols: &Policies,
) -> Vec<TxSpec> {
    let mut out = Vec::new();
    for (k, t) in raw.transaction.iter().enumerate() {
        let p = root().key("transaction").index(k);
        check_name(cx, p.key("name"), "transaction", &t.name);
        if raw.transaction[..k].iter().any(|o| o.name == t.name) {
            cx.err(
                p.key("name"),
                format!("transaction name {:?} is used twice", t.name),
            );
        }
        if t.participants.is_empty() || t.participants.len() > MAX_PARTICIPANTS {
            cx.err(
                p.key("participants"),
                format!(
                    "a transaction has 1 to {MAX_PARTICIPANTS} participants, got {}",
                    t.participants.len()
                ),
            );
        }
        let resend = t.resend.unwrap_or(SimDuration::from_secs(1));
        if resend.0 == 0 {
            cx.err(
                p.key("resend"),
                "resend must be longer than 0s: an unacknowledged decision is sent again after it",
            );
        }
        let Some(coord) = resolve(cx, &t.coordinator, p.key("coordinator")) else {
            continue;
        };
        let defaults = Defaults::of(raw, coord.0 as usize, dests);
        let mut calls = Vec::new();
        for (j, c) in t.participants.iter().take(MAX_PARTICIPANTS).enumerate() {
            let pp = p.key("participants").index(j);
            if c.to.is_none()
                || c.publish.is_some()
                || c.parallel.is_some()
                || c.work.is_some()
                || c.saga.is_some()
                || c.transaction.is_some()
            {
                cx.err(pp, "a participant is one call `{ to = \"service\", endpoint = ..., timeout = ... }`: it carries the PREPARE, then the COMMIT or ABORT");
                continue;
            }
            if c.timeout.is_none() {
                cx.err(pp.key("timeout"), "a participant needs a timeout: a vote that never comes must abort the transaction, not hold it forever");
            }
            if let Some(call) = build_call(cx, c, pp, resolve, raw, pols, &defaults) {
                calls.push(call);
            }
        }
        let participants: Vec<ServiceId> = calls.iter().map(|c| c.to).collect();
        for (j, a) in participants.iter().enumerate() {
            if participants[..j].contains(a) {
                cx.err(
                    p.key("participants").index(j),
                    "a service takes part once in a transaction (its lock is per key and transaction)",
                );
            }
        }
        // PREPAREs, COMMITs, ABORTs: the same call three times, so each phase has its site.
        let steps: Vec<Step> = (0..3)
            .flat_map(|_| calls.iter().cloned().map(Step::Call))
            .collect();
        let eps = &mut services[coord.0 as usize].endpoints;
        let endpoint = eps.len() as u32;
        eps.push(EndpointSpec {
            name: format!("transaction:{}", t.name),
            weight: 0.0,
            steps,
        });
        out.push(TxSpec {
            name: t.name.clone(),
            coordinator: coord,
            participants,
            endpoint,
            resend,
        });
    }
    out
}
