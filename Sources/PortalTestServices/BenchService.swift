import PortalAPI
import PortalRPC

/// `bench.v1.Bench`: answers every call with the same fixed ten-item response, for load tests.
public struct BenchService: Bench_V1_BenchService {
    private let response: Bench_V1_Resp

    /// Creates the service with its fixed response.
    public init() {
        var response = Bench_V1_Resp()
        response.items = (1...10).map { index in
            var item = Bench_V1_Item()
            let digits = String(index)
            item.id = "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - digits.count) + digits
            item.name = "Widget " + (index < 10 ? "0" : "") + digits
            item.quantity = Int64(1000 * index)
            return item
        }
        self.response = response
    }

    public func unary(request: Bench_V1_Req, context: ServerContext) async throws -> Bench_V1_Resp {
        response
    }
}
