"""An OTLP/gRPC trace receiver for benchmarks: accepts `TraceService/Export`, counts the spans and
keeps nothing. Prints `listening PORT`, then on SIGTERM `received N spans in M requests` and the CPU
time it used (it shares the machine with the services it receives from).

Usage: otlp_sink.py PORT
"""
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Sink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self):
        self.lock = threading.Lock()
        self.spans = 0
        self.requests = 0

    def Export(self, request, context):
        spans = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
        with self.lock:
            self.spans += spans
            self.requests += 1
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    sink = Sink()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    port = server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
    server.start()
    print(f"listening {port}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    server.stop(grace=None)
    print(f"received {sink.spans} spans in {sink.requests} requests, using {time.process_time():.1f} s of CPU", flush=True)


if __name__ == "__main__":
    main()
