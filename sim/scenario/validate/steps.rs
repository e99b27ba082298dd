//! Handler steps and calls: endpoints resolved, call steps built, synchronous cycles found.

use super::*;

/// A closed walk through the members of a strongly connected component, starting at its smallest node.
pub(super) fn cycle_through(graph: &DiGraph<u32, ()>, members: &[u32]) -> Vec<u32> {
    let start = members[0];
    let node = |n: u32| NodeIndex::new(n as usize);
    if graph.contains_edge(node(start), node(start)) {
        return vec![start, start];
    }
    // Breadth-first search inside the component for the shortest way back to `start`.
    let mut prev: BTreeMap<u32, u32> = BTreeMap::new();
    let mut frontier = vec![start];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for &n in &frontier {
            let mut outs: Vec<u32> = graph
                .neighbors(node(n))
                .map(|m| m.index() as u32)
                .filter(|m| members.binary_search(m).is_ok())
                .collect();
            outs.sort_unstable();
            for m in outs {
                if m == start {
                    let mut path = vec![start];
                    let mut cur = n;
                    while cur != start {
                        path.push(cur);
                        cur = prev[&cur];
                    }
                    path[1..].reverse();
                    path.push(start);
                    return path;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(m) {
                    e.insert(n);
                    next.push(m);
                }
            }
        }
        frontier = next;
    }
    vec![start, start]
}

pub(super) fn resolve_endpoint(
    cx: &mut Ctx,
    raw: &RawScenario,
    service: ServiceId,
    name: Option<&str>,
    path: TomlPath,
) -> Option<Option<u32>> {
    let Some(name) = name else { return Some(None) };
    let s = &raw.service[service.0 as usize];
    let names: Vec<&str> = if s.endpoint.is_empty() {
        vec!["default"]
    } else {
        s.endpoint.iter().map(|e| e.name.as_str()).collect()
    };
    match names.iter().position(|n| *n == name) {
        Some(i) => Some(Some(i as u32)),
        None => {
            let hint = did_you_mean(name, names.iter().copied())
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            cx.err(
                path,
                format!(
                    "service {:?} has no endpoint {name:?}{hint}; its endpoints: {}",
                    s.name,
                    names.join(", ")
                ),
            );
            None
        }
    }
}

pub(super) fn build_step(
    cx: &mut Ctx,
    st: &RawStep,
    path: TomlPath,
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
    raw: &RawScenario,
    pols: &Policies,
    defaults: &Defaults,
) -> Option<Step> {
    if let Some(name) = &st.transaction {
        if st.to.is_some()
            || st.parallel.is_some()
            || st.work.is_some()
            || st.publish.is_some()
            || st.saga.is_some()
        {
            cx.err(
                path,
                "a step is exactly one of: a call, a publish, a saga, a transaction, a group or work",
            );
            return None;
        }
        let Some(k) = raw.transaction.iter().position(|t| &t.name == name) else {
            let known: Vec<&str> = raw.transaction.iter().map(|t| t.name.as_str()).collect();
            cx.err(
                path.key("transaction"),
                unknown(
                    "transaction",
                    name,
                    &known,
                    "transactions",
                    "transactions: none (add a [[transaction]])",
                ),
            );
            return None;
        };
        let here = &raw.service[defaults.service].name;
        if &raw.transaction[k].coordinator != here {
            cx.err(path.key("transaction"), format!("transaction {name:?} is run by its coordinator {:?}: start it from a handler of that service, not {here:?}", raw.transaction[k].coordinator));
            return None;
        }
        return Some(Step::Tx(k as u32));
    }
    if let Some(name) = &st.saga {
        if st.criticality.is_some() {
            cx.err(
                path.key("criticality"),
                "a saga step takes no criticality: its steps' requests carry the criticality of the request that starts it",
            );
        }
        if st.to.is_some() || st.parallel.is_some() || st.work.is_some() || st.publish.is_some() {
            cx.err(
                path,
                "a step is exactly one of: a call, a publish, a saga, a group or work",
            );
            return None;
        }
        let Some(k) = raw.saga.iter().position(|s| &s.name == name) else {
            let known: Vec<&str> = raw.saga.iter().map(|s| s.name.as_str()).collect();
            cx.err(
                path.key("saga"),
                unknown(
                    "saga",
                    name,
                    &known,
                    "sagas",
                    "sagas: none (add a [[saga]])",
                ),
            );
            return None;
        };
        let here = &raw.service[defaults.service].name;
        if &raw.saga[k].orchestrator != here {
            cx.err(path.key("saga"), format!("saga {name:?} runs on its orchestrator {:?}: start it from a handler of that service, not {here:?}", raw.saga[k].orchestrator));
            return None;
        }
        return Some(Step::Saga(k as u32, st.wait.unwrap_or(false)));
    }
    let kinds = [
        st.to.is_some(),
        st.parallel.is_some(),
        st.work.is_some(),
        st.publish.is_some(),
        st.append.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if kinds != 1 {
        cx.err(path, "a step is exactly one of: a call `{ to = \"service\" }`, a publish `{ publish = \"queue or topic\" }`, an append `{ append = \"event store\" }`, a group `{ parallel = [...] }` or local work `{ work = { dist = ... } }`");
        return None;
    }
    if let Some(w) = &st.work {
        if st.endpoint.is_some()
            || st.timeout.is_some()
            || st.p.is_some()
            || st.required.is_some()
            || st.criticality.is_some()
        {
            cx.err(
                path.clone(),
                "a work step takes only `work`; endpoint, timeout, p, required and criticality belong to calls",
            );
        }
        return build_dist(cx, w, path.key("work")).map(Step::Work);
    }
    if let Some(members) = &st.parallel {
        if st.endpoint.is_some()
            || st.timeout.is_some()
            || st.p.is_some()
            || st.required.is_some()
            || st.criticality.is_some()
        {
            cx.err(path.clone(), "a parallel group takes only `parallel`; put timeout, p, required and criticality on each call inside it");
        }
        if members.is_empty() {
            cx.err(
                path.key("parallel"),
                "a parallel group needs at least one call",
            );
            return None;
        }
        if members.len() > MAX_PARALLEL {
            cx.err(
                path.key("parallel"),
                format!(
                    "a parallel group holds at most {MAX_PARALLEL} calls, this one has {}",
                    members.len()
                ),
            );
            return None;
        }
        let mut calls = Vec::new();
        for (m, c) in members.iter().enumerate() {
            let mp = path.key("parallel").index(m);
            if c.to.is_none() && c.publish.is_none() && c.append.is_none() {
                cx.err(
                    mp,
                    "each member of a parallel group is a call `{ to = \"service\" }`, a publish or an append",
                );
                continue;
            }
            if c.parallel.is_some() || c.work.is_some() {
                cx.err(
                    mp,
                    "a call inside a parallel group cannot itself hold `parallel` or `work`",
                );
                continue;
            }
            if c.migrate.is_some() {
                cx.err(
                    mp.key("migrate"),
                    "a migrated call stands alone as a step, not inside a parallel group",
                );
                continue;
            }
            if let Some(call) = build_call(cx, c, mp, resolve, raw, pols, defaults) {
                calls.push(call);
            }
        }
        return Some(Step::Parallel(calls));
    }
    let call = build_call(cx, st, path.clone(), resolve, raw, pols, defaults)?;
    match &st.migrate {
        Some(name) => super::shift::migrated_call(cx, raw, name, call, path, resolve),
        None => Some(Step::Call(call)),
    }
}

pub(super) fn build_call(
    cx: &mut Ctx,
    st: &RawStep,
    path: TomlPath,
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
    raw: &RawScenario,
    pols: &Policies,
    defaults: &Defaults,
) -> Option<CallSpec> {
    let mut append = None;
    let (to, publish) = match &st.publish {
        Some(name) => {
            let Some(&(dest, broker)) = defaults.dests.get(name) else {
                let known: Vec<&str> = defaults.dests.keys().map(|k| k.as_str()).collect();
                cx.err(
                    path.key("publish"),
                    unknown(
                        "queue or topic",
                        name,
                        &known,
                        "defined",
                        "defined: none (add a [[queue]] or [[topic]])",
                    ),
                );
                return None;
            };
            if st.endpoint.is_some() {
                cx.err(
                    path.key("endpoint"),
                    "a publish goes to its broker's first endpoint: drop `endpoint`",
                );
            }
            let poison = st.poison.unwrap_or(0.0);
            check_probability(cx, poison, path.key("poison"), false);
            if st.wait == Some(false)
                && (st.retry.is_some() || st.timeout.is_some() || st.hedge.is_some())
            {
                cx.err(path.key("wait"), "a fire-and-forget publish (wait = false) has no timeout, retry or hedge: nobody waits for its answer");
            }
            (broker?, Some(PublishSpec { dest, poison }))
        }
        None if st.append.is_some() => {
            let (to, store) = super::events::append_target(cx, raw, st, path.clone(), resolve)?;
            append = Some(store);
            (to, None)
        }
        None => {
            if st.poison.is_some() {
                cx.err(path.key("poison"), "`poison` belongs to a publish step");
            }
            if st.wait.is_some() {
                cx.err(path.key("wait"), "`wait` belongs to a publish step (wait for the broker) or a saga step (wait for the saga's end)");
            }
            (
                resolve(cx, st.to.as_deref().expect("checked"), path.key("to"))?,
                None,
            )
        }
    };
    let endpoint = if publish.is_some() || append.is_some() {
        Some(0)
    } else {
        resolve_endpoint(cx, raw, to, st.endpoint.as_deref(), path.key("endpoint"))?
    };
    let probability = st.p.unwrap_or(1.0);
    check_probability(cx, probability, path.key("p"), false);
    if st.timeout == Some(SimDuration::ZERO) {
        cx.err(path.key("timeout"), "timeout must be longer than 0s");
    }
    let named = |cx: &mut Ctx, kind: &str, name: Option<&str>, default: Option<&str>| {
        pols.pick(cx, kind, name, path.key(kind), default, &defaults.path)
    };
    let retry = named(cx, "retry", st.retry.as_deref(), defaults.retry);
    let breaker = named(cx, "breaker", st.breaker.as_deref(), defaults.breaker);
    let hedge = named(cx, "hedge", st.hedge.as_deref(), None);
    let cache = named(cx, "cache", st.cache.as_deref(), None);
    let updates = named(cx, "cache", st.updates.as_deref(), None);
    if cache.is_some() && updates.is_some() {
        cx.err(path.key("updates"), "a call reads through a cache or updates its data, not both: make the update its own call");
    }
    let retry = if hedge.is_some() && retry.is_some() {
        if st.retry.is_some() {
            cx.err(
                path.key("hedge"),
                "a call hedges or retries, not both (as in gRPC): drop `retry` or `hedge`",
            );
        }
        None // the service's default retry gives way to an explicit hedge
    } else {
        retry
    };
    let balancer = named(cx, "balancer", st.balancer.as_deref(), defaults.balancer);
    let outlier = named(cx, "outlier", st.outlier.as_deref(), defaults.outlier);
    let bulkhead = named(cx, "bulkhead", st.bulkhead.as_deref(), defaults.bulkhead);
    let concurrency = named(cx, "concurrency", st.concurrency.as_deref(), None);
    let throttle = named(cx, "throttle", st.throttle.as_deref(), None);
    let pool = named(cx, "pool", st.pool.as_deref(), None);
    // The state these keep lives on the (caller, callee) pair: one of each per pair.
    // Two retry policies' budgets are the same budget when configured alike.
    let budget = retry.and_then(|r| {
        pols.retries[r as usize]
            .budget
            .as_ref()
            .map(|b| format!("{b:?}"))
    });
    let pick = |list: Option<u32>, name: &dyn Fn(usize) -> String| list.map(|i| name(i as usize));
    for (kind, key, named) in [
        (
            "breaker",
            "breaker",
            pick(breaker, &|i| pols.breakers[i].name.clone()),
        ),
        (
            "balancer",
            "balancer",
            pick(balancer, &|i| pols.balancers[i].name.clone()),
        ),
        (
            "outlier",
            "outlier",
            pick(outlier, &|i| pols.outliers[i].name.clone()),
        ),
        (
            "bulkhead",
            "bulkhead",
            pick(bulkhead, &|i| pols.bulkheads[i].name.clone()),
        ),
        (
            "concurrency",
            "concurrency",
            pick(concurrency, &|i| pols.concurrency[i].name.clone()),
        ),
        (
            "throttle",
            "throttle",
            pick(throttle, &|i| pols.throttles[i].name.clone()),
        ),
        ("pool", "pool", pick(pool, &|i| pols.pools[i].name.clone())),
        ("retry budget", "retry", budget),
    ] {
        let Some(named) = named else { continue };
        let at = path.key(key);
        let slot = (defaults.service, to.0, kind);
        match cx.pair_policies.get(&slot) {
            None => {
                cx.pair_policies.insert(slot, (named, at));
            }
            Some((first, _)) if *first == named => {}
            Some((first, where_)) => {
                let (from, callee) = (
                    &raw.service[defaults.service].name,
                    &raw.service[to.0 as usize].name,
                );
                let message = if kind == "retry budget" {
                    format!("the calls from {from} to {callee} share one retry budget, and the retry policy here names a different one than {where_} (budgets are kept per caller -> callee pair): give them the same budget")
                } else {
                    format!("the calls from {from} to {callee} share one {kind} ({first:?}, named at {where_}): name the same {kind} on every call from {from} to {callee}, or none")
                };
                cx.err(at, message);
            }
        }
    }
    Some(CallSpec {
        to,
        endpoint,
        timeout: st.timeout,
        probability,
        required: st.required.unwrap_or(true),
        retry,
        breaker,
        hedge,
        cache,
        updates,
        balancer,
        outlier,
        bulkhead,
        concurrency,
        throttle,
        pool,
        publish,
        append,
        reads: super::events::reads(cx, raw, st, to, path.key("reads")),
        write: None,
        after_write: false,
        wait: st.wait.unwrap_or(true),
        criticality: super::priority::criticality(
            cx,
            path.key("criticality"),
            st.criticality.as_deref(),
        ),
    })
}
