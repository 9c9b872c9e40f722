// The grpc++ peer of bench/streaming: serves bench.v1.Bench (proto/bench/v1/bench.proto) with
// Stream answering `page_size` Items, the same ten items in turn as Unary's response holds, and
// Unary as the reference server does.
//
//   cpp_stream_server HOST:PORT callback|sync
//
// callback: the callback API; a ServerWriteReactor writes the next item once the last is done
//           (grpc++ allows one outstanding write per stream).
// sync:     the synchronous API; ServerWriter::Write blocks per item.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/v1/bench.grpc.pb.h"

namespace {

std::vector<bench::v1::Item> TenItems() {
  std::vector<bench::v1::Item> items;
  for (int index = 1; index <= 10; ++index) {
    bench::v1::Item item;
    char id[40];
    std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", index);
    char name[16];
    std::snprintf(name, sizeof name, "Widget %02d", index);
    item.set_id(id);
    item.set_name(name);
    item.set_quantity(1000 * index);
    items.push_back(item);
  }
  return items;
}

const std::vector<bench::v1::Item>& Items() {
  static const std::vector<bench::v1::Item> items = TenItems();
  return items;
}

bench::v1::Resp UnaryResponse() {
  bench::v1::Resp response;
  for (const auto& item : Items()) *response.add_items() = item;
  return response;
}

class ItemWriter final : public grpc::ServerWriteReactor<bench::v1::Item> {
 public:
  explicit ItemWriter(int count) : remaining_(count) { WriteNext(); }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (remaining_ <= 0) {
      Finish(grpc::Status::OK);
      return;
    }
    --remaining_;
    StartWrite(&Items()[next_++ % Items().size()]);
  }

  int remaining_;
  size_t next_ = 0;
};

class CallbackService final : public bench::v1::Bench::CallbackService {
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, const bench::v1::Req*,
                                  bench::v1::Resp* response) override {
    static const bench::v1::Resp fixed = UnaryResponse();
    *response = fixed;
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<bench::v1::Item>* Stream(grpc::CallbackServerContext*,
                                                    const bench::v1::Req* request) override {
    return new ItemWriter(request->page_size());
  }
};

class SyncService final : public bench::v1::Bench::Service {
  grpc::Status Unary(grpc::ServerContext*, const bench::v1::Req*, bench::v1::Resp* response) override {
    static const bench::v1::Resp fixed = UnaryResponse();
    *response = fixed;
    return grpc::Status::OK;
  }

  grpc::Status Stream(grpc::ServerContext*, const bench::v1::Req* request,
                      grpc::ServerWriter<bench::v1::Item>* writer) override {
    for (int index = 0; index < request->page_size(); ++index) {
      if (!writer->Write(Items()[index % Items().size()])) return grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
    }
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[2], "callback") != 0 && std::strcmp(argv[2], "sync") != 0)) {
    std::fprintf(stderr, "usage: %s HOST:PORT callback|sync\n", argv[0]);
    return 2;
  }
  CallbackService callback;
  SyncService sync;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(argv[1], grpc::InsecureServerCredentials());
  if (std::strcmp(argv[2], "callback") == 0) {
    builder.RegisterService(&callback);
  } else {
    builder.RegisterService(&sync);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return 1;
  std::printf("listening on %s (%s)\n", argv[1], argv[2]);
  std::fflush(stdout);
  server->Wait();
  return 0;
}
