import PortalAPI
import PortalHTTP2
import PortalRPC
import Testing

@Suite("Health and reflection on every server")
struct StandardServicesTests {
    @Test func healthReportsServingAndUnknownServices() async throws {
        try await withEchoServer { _, port in
            let channel = channel(to: port)
            let health = Grpc_Health_V1_HealthClient(channel: channel)
            var request = Grpc_Health_V1_HealthCheckRequest()
            #expect(try await health.check(request).status == .serving)
            request.service = "portal.testing.v1.Echo"
            #expect(try await health.check(request).status == .serving)
            request.service = "no.such.Service"
            let error = try await #require(throws: RPCError.self) { try await health.check(request) }
            #expect(error.code == .notFound)

            request.service = ""
            var updates = try await health.watch(request).makeAsyncIterator()
            #expect(try await updates.next()?.status == .serving)
            await channel.close()
        }
    }

    @Test func reflectionListsServicesAndServesTheirFiles() async throws {
        try await withEchoServer { _, port in
            let channel = channel(to: port)
            let reflection = Grpc_Reflection_V1_ServerReflectionClient(channel: channel)
            let (services, files, missing) = try await reflection.serverReflectionInfo { call in
                var request = Grpc_Reflection_V1_ServerReflectionRequest()
                request.messageRequest = .listServices("")
                try await call.send(request)
                let services = try await call.receive()
                request.messageRequest = .fileContainingSymbol("portal.testing.v1.Echo.Get")
                try await call.send(request)
                let files = try await call.receive()
                request.messageRequest = .fileContainingSymbol("no.such.Symbol")
                try await call.send(request)
                let missing = try await call.receive()
                try await call.finishSending()
                return (services, files, missing)
            }
            guard case .listServicesResponse(let list)? = services?.messageResponse else {
                Issue.record("expected a service list")
                return
            }
            let names = list.service.map(\.name)
            #expect(names.contains("portal.testing.v1.Echo"))
            #expect(names.contains("grpc.health.v1.Health"))
            #expect(names.contains("grpc.reflection.v1alpha.ServerReflection"))
            guard case .fileDescriptorResponse(let descriptors)? = files?.messageResponse else {
                Issue.record("expected file descriptors")
                return
            }
            #expect(descriptors.fileDescriptorProto.count == 2)  // echo.proto and timestamp.proto
            guard case .errorResponse(let error)? = missing?.messageResponse else {
                Issue.record("expected an error for an unknown symbol")
                return
            }
            #expect(error.errorCode == Int32(RPCStatusCode.notFound.rawValue))
            await channel.close()
        }
    }
}
