"""RabbitMQ broker figures: confirmed publishes, enqueue → delivery latency, and the AMQP inspection
that `workers.broker_ops` does (ready counts, reading and taking dead letters).

    .venv/bin/python bench/rabbitmq_broker.py [--url amqp://guest:guest@127.0.0.1:5672/%2F] [--messages 2000]

Works on queues of its own (`greenroom-bench-<pid>`, with their .DQ and .XQ) in the URL's vhost and
deletes them at the end. Prints "skipped" when no RabbitMQ answers. Needs no database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dramatiq
import pika

from project.rabbitmq import GreenroomRabbitmqBroker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--dead", type=int, default=1000)
    args = parser.parse_args()
    try:
        pika.BlockingConnection(pika.URLParameters(args.url + "?socket_timeout=2")).close()
    except Exception as exc:
        print(f"skipped: no RabbitMQ at {args.url} ({type(exc).__name__})")
        return
    queue = f"greenroom-bench-{os.getpid()}"
    confirmed = GreenroomRabbitmqBroker(url=args.url, middleware=[])
    unconfirmed = GreenroomRabbitmqBroker(url=args.url, middleware=[], confirm_delivery=False)
    try:
        publish_rate(confirmed, queue, args.messages, "confirmed (Greenroom's default)")
        publish_rate(unconfirmed, queue, args.messages, "unconfirmed")
        confirmed.purge(queue)
        delivery_latency(confirmed, queue)
        inspection(confirmed, queue, args.dead)
    finally:
        channel = confirmed.connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
        confirmed.close()
        unconfirmed.close()


def message(queue: str, index: int) -> dramatiq.Message[None]:
    return dramatiq.Message(queue_name=queue, actor_name="bench.noop", args=(), kwargs={"i": index}, options={})


def publish_rate(broker: GreenroomRabbitmqBroker, queue: str, count: int, label: str) -> None:
    broker.enqueue(message(queue, -1))  # declares the queues, opens the connection
    started = time.perf_counter()
    for index in range(count):
        broker.enqueue(message(queue, index))
    took = time.perf_counter() - started
    print(f"enqueue, {label}: {count} messages in {took:.2f} s = {count / took:,.0f}/s "
          f"({took / count * 1e3:.2f} ms each)")


def delivery_latency(broker: GreenroomRabbitmqBroker, queue: str, count: int = 200, gap: float = 0.02) -> None:
    """Publish one message every `gap` s to an idle Dramatiq consumer; time publish → __next__."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = threading.Event()

    def consume() -> None:
        consumer = broker.consume(queue, prefetch=2, timeout=1000)
        while not done.is_set():
            proxy = next(consumer)
            if proxy is None:
                continue
            latencies.append(time.perf_counter() - sent[proxy.message_id])
            consumer.ack(proxy)
            if len(latencies) == count:
                done.set()
        consumer.close()

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.5)
    for index in range(count):
        msg = message(queue, index)
        sent[msg.message_id] = time.perf_counter()
        broker.enqueue(msg)
        time.sleep(gap)
    done.wait(30)
    done.set()
    thread.join(10)
    ms = sorted(x * 1e3 for x in latencies)
    print(f"enqueue → delivery to an idle consumer ({len(ms)} messages, one per {gap * 1e3:.0f} ms): "
          f"p50 {statistics.median(ms):.1f} ms, p99 {ms[int(len(ms) * 0.99) - 1]:.1f} ms, max {ms[-1]:.1f} ms")


def inspection(broker: GreenroomRabbitmqBroker, queue: str, dead: int) -> None:
    names = [queue, f"{queue}.DQ", f"{queue}.XQ"] * 3
    started = time.perf_counter()
    for _ in range(50):
        broker.ready_counts(names)
    print(f"ready counts of 9 queues (queue_stats of 3 classes): {(time.perf_counter() - started) / 50 * 1e3:.1f} ms")
    for index in range(dead):
        broker.put(f"{queue}.XQ", message(queue, index).encode(), {})
    started = time.perf_counter()
    read = broker.browse(f"{queue}.XQ")
    took = time.perf_counter() - started
    print(f"read {len(read)} dead letters (and put them back): {took:.2f} s")
    wanted = {delivery.key for delivery in read[:10]}
    started = time.perf_counter()
    broker.take(f"{queue}.XQ", lambda delivery: delivery.key in wanted)
    took = time.perf_counter() - started
    left = broker.ready_counts([f"{queue}.XQ"])[f"{queue}.XQ"]
    print(f"take 10 of {dead} dead letters: {took:.2f} s ({left} left)")


if __name__ == "__main__":
    main()
