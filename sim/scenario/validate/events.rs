//! Event sourcing and CQRS (`[[event_store]]`, `[[projection]]`, `append` and `reads` steps).

use super::*;

/// Events a store holds at most, unless it says.
const DEFAULT_MAX_EVENTS: u64 = 1_000_000;
/// The largest `max_events` accepted. The log is in memory: measured, 21 bytes an event
/// when events share 1,000 keys, 142 when every event has its own key (1.4 GB at this cap).
const MAX_MAX_EVENTS: u64 = 10_000_000;

/// The store named by a step's `append`: (its service, its index).
pub(super) fn append_target(
    cx: &mut Ctx,
    raw: &RawScenario,
    st: &RawStep,
    path: TomlPath,
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
) -> Option<(ServiceId, u32)> {
    let name = st.append.as_deref().expect("an append");
    let Some(k) = raw.event_store.iter().position(|e| e.name == name) else {
        let known: Vec<&str> = raw.event_store.iter().map(|e| e.name.as_str()).collect();
        cx.err(
            path.key("append"),
            unknown(
                "event store",
                name,
                &known,
                "event stores",
                "event stores: none (add an [[event_store]])",
            ),
        );
        return None;
    };
    if st.endpoint.is_some() {
        cx.err(
            path.key("endpoint"),
            "an append goes to its store's service's first endpoint: drop `endpoint`",
        );
    }
    if st.wait.is_some() || st.poison.is_some() {
        cx.err(
            path.clone(),
            "`wait` and `poison` belong to a publish; an append is a call that waits for its commit",
        );
    }
    let service = &raw.event_store[k].service;
    let to = resolve(
        cx,
        service,
        root().key("event_store").index(k).key("service"),
    )?;
    Some((to, k as u32))
}

/// The projection a call's `reads` names, if the callee keeps its read model.
pub(super) fn reads(
    cx: &mut Ctx,
    raw: &RawScenario,
    st: &RawStep,
    to: ServiceId,
    path: TomlPath,
) -> Option<u32> {
    let name = st.reads.as_deref()?;
    let Some(k) = raw.projection.iter().position(|p| p.name == name) else {
        let known: Vec<&str> = raw.projection.iter().map(|p| p.name.as_str()).collect();
        cx.err(
            path,
            unknown(
                "projection",
                name,
                &known,
                "projections",
                "projections: none (add a [[projection]])",
            ),
        );
        return None;
    };
    let keeper = &raw.projection[k].service;
    if raw
        .service
        .get(to.0 as usize)
        .is_some_and(|s| &s.name != keeper)
    {
        cx.err(
            path,
            format!(
                "projection {name:?}'s read model is kept by {keeper:?}: a call that reads it goes to {keeper:?}, not {:?}",
                raw.service[to.0 as usize].name
            ),
        );
        return None;
    }
    Some(k as u32)
}

/// The `[[event_store]]` and `[[projection]]` definitions.
pub(super) fn build(
    cx: &mut Ctx,
    raw: &RawScenario,
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
) -> (Vec<EventStoreSpec>, Vec<ProjectionSpec>) {
    let mut stores = Vec::new();
    for (k, e) in raw.event_store.iter().enumerate() {
        let p = root().key("event_store").index(k);
        check_name(cx, p.key("name"), "event store", &e.name);
        if raw.event_store[..k].iter().any(|o| o.name == e.name) {
            cx.err(
                p.key("name"),
                format!("event store name {:?} is used twice", e.name),
            );
        }
        let max_events = e.max_events.unwrap_or(DEFAULT_MAX_EVENTS);
        if !(1..=MAX_MAX_EVENTS).contains(&max_events) {
            cx.err(
                p.key("max_events"),
                format!("max_events is 1 to {MAX_MAX_EVENTS} (the log is kept in memory: up to about 140 bytes an event), got {max_events}"),
            );
        }
        if let Some(service) = resolve(cx, &e.service, p.key("service")) {
            stores.push(EventStoreSpec {
                name: e.name.clone(),
                service,
                max_events,
            });
        }
    }
    let mut projections = Vec::new();
    for (k, r) in raw.projection.iter().enumerate() {
        let p = root().key("projection").index(k);
        check_name(cx, p.key("name"), "projection", &r.name);
        if raw.projection[..k].iter().any(|o| o.name == r.name) {
            cx.err(
                p.key("name"),
                format!("projection name {:?} is used twice", r.name),
            );
        }
        let Some(store) = raw.event_store.iter().position(|e| e.name == r.store) else {
            let known: Vec<&str> = raw.event_store.iter().map(|e| e.name.as_str()).collect();
            cx.err(
                p.key("store"),
                unknown(
                    "event store",
                    &r.store,
                    &known,
                    "event stores",
                    "event stores: none (add an [[event_store]])",
                ),
            );
            continue;
        };
        let from = match &r.from {
            None => Some(0),
            Some(toml::Value::Integer(n)) if *n >= 0 => Some(*n as u64),
            Some(toml::Value::String(s)) if s == "end" => None,
            Some(other) => {
                cx.err(
                    p.key("from"),
                    format!("from is an offset (0 replays the whole log) or \"end\" (only events committed after the start), got {other}"),
                );
                None
            }
        };
        let timeout = r.timeout.unwrap_or(SimDuration::from_secs(30));
        let retry_delay = r.retry_delay.unwrap_or(SimDuration::from_secs(1));
        for (key, d) in [("timeout", timeout), ("retry_delay", retry_delay)] {
            if d.0 == 0 {
                cx.err(
                    p.key(key),
                    format!("{key} must be longer than 0s: the projector waits that long before trying again"),
                );
            }
        }
        let Some(service) = resolve(cx, &r.service, p.key("service")) else {
            continue;
        };
        let Some(endpoint) =
            resolve_endpoint(cx, raw, service, r.endpoint.as_deref(), p.key("endpoint"))
        else {
            continue;
        };
        projections.push(ProjectionSpec {
            name: r.name.clone(),
            store: store as u32,
            service,
            endpoint: endpoint.unwrap_or(0),
            start: SimTime::ZERO.after(r.start.unwrap_or(SimDuration::ZERO)),
            from,
            timeout,
            retry_delay,
        });
    }
    (stores, projections)
}
