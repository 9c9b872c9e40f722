import PortalAPI
import PortalRPC

extension PortalGatewayService {
    // MARK: Webhooks (Admin only)

    public func createWebhook(
        request: Portal_Gateway_V1_CreateWebhookRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_CreateWebhookResponse {
        let (caller, call) = try await authorize(context, .manageWebhooks)
        return .init(
            answering: try await call.run("audit") { metadata, options in
                try await backends.audit.createWebhook(
                    request.scoped(to: caller.organizationID), metadata: metadata, options: options)
            })
    }

    public func listWebhooks(
        request: Portal_Gateway_V1_ListWebhooksRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_ListWebhooksResponse {
        let (caller, call) = try await authorize(context, .manageWebhooks)
        return .init(
            answering: try await call.run("audit") { metadata, options in
                try await backends.audit.listWebhooks(
                    request.scoped(to: caller.organizationID), metadata: metadata, options: options)
            })
    }

    public func updateWebhook(
        request: Portal_Gateway_V1_UpdateWebhookRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_UpdateWebhookResponse {
        let (caller, call) = try await authorize(context, .manageWebhooks)
        return .init(
            answering: try await call.run("audit") { metadata, options in
                try await backends.audit.updateWebhook(
                    request.scoped(to: caller.organizationID), metadata: metadata, options: options)
            })
    }

    public func deleteWebhook(
        request: Portal_Gateway_V1_DeleteWebhookRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_DeleteWebhookResponse {
        let (caller, call) = try await authorize(context, .manageWebhooks)
        return .init(
            answering: try await call.run("audit") { metadata, options in
                try await backends.audit.deleteWebhook(
                    request.scoped(to: caller.organizationID), metadata: metadata, options: options)
            })
    }

    public func listWebhookDeliveries(
        request: Portal_Gateway_V1_ListWebhookDeliveriesRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_ListWebhookDeliveriesResponse {
        let (caller, call) = try await authorize(context, .manageWebhooks)
        return .init(
            answering: try await call.run("audit") { metadata, options in
                try await backends.audit.listDeliveries(
                    request.scoped(to: caller.organizationID), metadata: metadata, options: options)
            })
    }

    public func redeliverWebhookEvent(
        request: Portal_Gateway_V1_RedeliverWebhookEventRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_RedeliverWebhookEventResponse {
        let (caller, call) = try await authorize(context, .manageWebhooks)
        return .init(
            answering: try await call.run("audit") { metadata, options in
                try await backends.audit.redeliverEvent(
                    request.scoped(to: caller.organizationID), metadata: metadata, options: options)
            })
    }
}
