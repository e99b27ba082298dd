"""The engine bench's models A and B in SimPy, for the README's speed comparison.

  python3 benches/simpy_models.py [customers]      (pip install simpy)

A: M/M/c, lambda = 9/s, c = 10, mu = 1/s. B: gateway (4 workers, exp 2 ms) -> orders (8,
lognormal mean 10 ms, sigma 0.5) -> payment (4, exp 5 ms), network uniform 0.5-1.5 ms per
hop, Poisson 600/s; a worker is held only for its work, as in benches/engine.rs and
scenarios/chain.toml. Prints wall seconds per model and each model's mean (to check the
model: A's mean wait is Erlang C's 0.669 s; B's mean latency about 26 ms).
"""
import math
import random
import sys
import time

import simpy


def mmc(n):
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=10)
    rng = random.Random(1)
    waits = []

    def customer():
        t0 = env.now
        with server.request() as req:
            yield req
            waits.append(env.now - t0)
            yield env.timeout(rng.expovariate(1.0))

    def source():
        for _ in range(n):
            env.process(customer())
            yield env.timeout(rng.expovariate(9.0))

    env.process(source())
    env.run()
    return sum(waits) / len(waits)


def chain(n):
    env = simpy.Environment()
    tiers = [simpy.Resource(env, capacity=c) for c in (4, 8, 4)]
    rng = random.Random(1)
    sigma = 0.5
    mu = math.log(0.010) - sigma * sigma / 2
    work = [
        lambda: rng.expovariate(1 / 0.002),
        lambda: rng.lognormvariate(mu, sigma),
        lambda: rng.expovariate(1 / 0.005),
    ]
    net = lambda: rng.uniform(0.0005, 0.0015)
    lat = []

    def request():
        t0 = env.now
        for k in range(3):
            with tiers[k].request() as req:
                yield req
                yield env.timeout(work[k]())
            yield env.timeout(net())
        yield env.timeout(net())  # payment's reply reaches orders; orders replies
        lat.append(env.now - t0)

    def source():
        for _ in range(n):
            env.process(request())
            yield env.timeout(rng.expovariate(600.0))

    env.process(source())
    env.run()
    return sum(lat) / len(lat)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for name, model in (("A_mmc", mmc), ("B_chain", chain)):
        t = time.perf_counter()
        mean = model(n)
        wall = time.perf_counter() - t
        print(f"{name}: {n} customers in {wall:.2f} s wall ({n / wall:,.0f} per second), mean {mean * 1e3:.2f} ms")
