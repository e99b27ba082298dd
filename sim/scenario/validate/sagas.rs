//! Sagas (`[[saga]]`): orchestrated and choreographed steps with their compensations.

use super::*;
use crate::policy::backoff::Backoff;
use crate::policy::broker::OnFailure;

/// The `[[saga]]` definitions: orchestrated or choreographed steps, resolved and checked.
pub(super) fn build_sagas(
    cx: &mut Ctx,
    raw: &RawScenario,
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
    services: &mut [ServiceSpec],
    queues: &mut Vec<QueueSpec>,
    dests: &BTreeMap<String, (Dest, Option<ServiceId>)>,
    pols: &Policies,
) -> Vec<SagaSpec> {
    let mut sagas = Vec::new();
    for (k, sg) in raw.saga.iter().enumerate() {
        let p = root().key("saga").index(k);
        check_name(cx, p.key("name"), "saga", &sg.name);
        if raw.saga[..k].iter().any(|o| o.name == sg.name) {
            cx.err(
                p.key("name"),
                format!("saga name {:?} is used twice", sg.name),
            );
        }
        let Some(orch) = resolve(cx, &sg.orchestrator, p.key("orchestrator")) else {
            continue;
        };
        let defaults = Defaults::of(raw, orch.0 as usize, dests);
        if sg.steps.is_empty() {
            cx.err(p.key("steps"), "a saga needs at least one step");
        }
        let mut defs = Vec::new();
        let mut calls = Vec::new();
        let mut names = Vec::new();
        for (j, st) in sg.steps.iter().enumerate() {
            let sp = p.key("steps").index(j);
            if names.contains(&st.name) {
                cx.err(
                    sp.key("name"),
                    format!("step name {:?} is used twice in this saga", st.name),
                );
            }
            names.push(st.name.clone());
            let call = |cx: &mut Ctx, c: &Option<RawStep>, key: &str| -> Option<CallSpec> {
                let c = c.as_ref()?;
                if c.to.is_none() && c.publish.is_none() {
                    cx.err(sp.key(key), "a saga action or compensation is a call `{ to = \"service\", endpoint = ... }` or a publish");
                    return None;
                }
                if c.parallel.is_some() || c.work.is_some() || c.saga.is_some() {
                    cx.err(sp.key(key), "a saga action or compensation is one call");
                    return None;
                }
                build_call(cx, c, sp.key(key), resolve, raw, pols, &defaults)
            };
            let action = call(cx, &st.action, "action");
            let compensation = call(cx, &st.compensation, "compensation");
            if st.action.is_none() && st.compensation.is_some() {
                cx.err(
                    sp.clone(),
                    "a step with a compensation needs an action to compensate",
                );
            }
            defs.push(crate::policy::saga::StepDef {
                action: st.action.is_some(),
                compensation: st.compensation.is_some(),
            });
            calls.push((action, compensation));
        }
        let pivot = sg
            .pivot
            .as_ref()
            .and_then(|name| match names.iter().position(|n| n == name) {
                Some(i) => Some(i),
                None => {
                    cx.err(
                        p.key("pivot"),
                        format!("no step named {name:?}; steps: {}", names.join(", ")),
                    );
                    None
                }
            });
        if let Some(pv) = pivot {
            for (j, d) in defs.iter().enumerate().skip(pv + 1) {
                if d.compensation {
                    cx.err(p.key("steps").index(j).key("compensation"), "steps after the pivot are never compensated (only retried): drop this compensation or move the pivot");
                }
            }
        }
        let mut config = crate::policy::saga::Config::new(defs, pivot);
        for (v, key, field) in [
            (
                sg.action_attempts,
                "action_attempts",
                &mut config.action_attempts,
            ),
            (
                sg.retriable_attempts,
                "retriable_attempts",
                &mut config.retriable_attempts,
            ),
            (
                sg.compensation_attempts,
                "compensation_attempts",
                &mut config.compensation_attempts,
            ),
        ] {
            if let Some(v) = v {
                if v == 0 || v > 1000 {
                    cx.err(p.key(key), format!("{key} is between 1 and 1000"));
                }
                *field = v.clamp(1, 1000);
            }
        }
        config.continue_with_error = sg.continue_with_error;
        config.compensate_failed = sg.compensate_failed;
        if let Some(b) = sg.backoff {
            config.backoff = b;
        }
        let choreography = match sg.mode.as_deref().unwrap_or("orchestration") {
            "orchestration" => {
                for (key, set) in [
                    ("broker", sg.broker.is_some()),
                    ("concurrency", sg.concurrency.is_some()),
                    ("visibility_timeout", sg.visibility_timeout.is_some()),
                    ("idempotency_ttl", sg.idempotency_ttl.is_some()),
                ] {
                    if set {
                        cx.err(
                            p.key(key),
                            format!("`{key}` belongs to mode = \"choreography\""),
                        );
                    }
                }
                None
            }
            "choreography" => {
                if sg.idempotent {
                    cx.err(p.key("idempotent"), "`idempotent` is for orchestration: a choreographed saga's participants deduplicate events with idempotency_ttl");
                }
                let broker = match &sg.broker {
                    Some(b) => resolve(cx, b, p.key("broker")),
                    None => {
                        cx.err(p.key("broker"), "a choreographed saga needs broker = \"<service>\": its steps are events on that broker");
                        None
                    }
                };
                let concurrency = sg.concurrency.unwrap_or(8);
                if concurrency == 0 || concurrency > 10_000 {
                    cx.err(p.key("concurrency"), "concurrency is between 1 and 10000");
                }
                let mut per_step = Vec::new();
                for (j, (a, c)) in calls.iter().enumerate() {
                    let mut at = [None, None];
                    for (k, call) in [a, c].into_iter().enumerate() {
                        let Some(call) = call else { continue };
                        if call.publish.is_some() {
                            cx.err(p.key("steps").index(j), "a choreographed step is handled by a service (`to`): its event is the message");
                            continue;
                        }
                        at[k] = Some(queues.len() as u32);
                        // The step's retry policy: a failed handling goes back to the queue
                        // after the policy's back-off (doubled each time, as the broker's
                        // redelivery delay does; no jitter), up to its attempts.
                        let (on_failure, delay, cap) = match call.retry {
                            Some(r) => match pols.retries[r as usize].backoff {
                                Backoff::None => {
                                    (OnFailure::Requeue, SimDuration::ZERO, SimDuration::ZERO)
                                }
                                Backoff::Fixed(d) => (OnFailure::Requeue, d, d),
                                Backoff::Exponential { base, cap, .. }
                                | Backoff::Decorrelated { base, cap }
                                | Backoff::Randomized { base, cap, .. }
                                | Backoff::Envoy { base, max: cap }
                                | Backoff::Grpc {
                                    initial: base,
                                    max: cap,
                                    ..
                                }
                                | Backoff::Google {
                                    initial: base,
                                    max: cap,
                                    ..
                                }
                                | Backoff::R4jExponential {
                                    initial: base,
                                    max: cap,
                                    ..
                                } => (OnFailure::Requeue, base, cap),
                            },
                            None => (
                                OnFailure::Visibility,
                                SimDuration::ZERO,
                                SimDuration::from_secs(900),
                            ),
                        };
                        queues.push(QueueSpec {
                            name: format!(
                                "{}.{}{}",
                                sg.name,
                                names[j],
                                if k == 1 { ".undo" } else { "" }
                            ),
                            broker: broker.unwrap_or(ServiceId(0)),
                            config: crate::policy::broker::Config {
                                visibility: sg
                                    .visibility_timeout
                                    .unwrap_or(SimDuration::from_secs(30)),
                                on_failure,
                                redelivery_delay: delay,
                                redelivery_cap: cap,
                                ..crate::policy::broker::Config::default()
                            },
                            max_messages: 1_000_000,
                            visible_within: Vec::new(),
                            consumers: vec![ConsumerSpec {
                                service: call.to,
                                concurrency: concurrency.clamp(1, 10_000),
                                endpoint: call.endpoint.unwrap_or(0),
                                idempotency_ttl: sg.idempotency_ttl,
                            }],
                            saga: Some((sagas.len() as u32, (j as u32) << 1 | k as u32)),
                        });
                    }
                    per_step.push(at);
                }
                Some(per_step)
            }
            other => {
                unknown_kind(
                    cx,
                    p.key("mode"),
                    "saga mode",
                    other,
                    &["orchestration", "choreography"],
                );
                None
            }
        };
        // The orchestrator holds the saga's calls as a hidden endpoint, so that they get call
        // sites, edges and links like any other call.
        let mut steps = Vec::new();
        let mut call_steps = Vec::new();
        for (a, c) in calls.iter().filter(|_| choreography.is_none()) {
            let mut at = [None, None];
            for (k, call) in [a, c].into_iter().enumerate() {
                if let Some(call) = call {
                    at[k] = Some(steps.len() as u32);
                    steps.push(Step::Call(call.clone()));
                }
            }
            call_steps.push(at);
        }
        let eps = &mut services[orch.0 as usize].endpoints;
        let endpoint = eps.len() as u32;
        if choreography.is_none() {
            eps.push(EndpointSpec {
                name: format!("saga:{}", sg.name),
                weight: 0.0,
                steps,
            });
        }
        sagas.push(SagaSpec {
            name: sg.name.clone(),
            orchestrator: orch,
            config,
            step_names: names,
            calls,
            endpoint,
            call_steps,
            choreography,
            idempotent: sg.idempotent,
        });
    }

    sagas
}
