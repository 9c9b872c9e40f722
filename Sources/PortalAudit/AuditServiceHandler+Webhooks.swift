import PortalAPI
import PortalRPC
import PortalStorage
import PortalStorageRPC
import PortalWebhookTransport

extension AuditServiceHandler {
    public func createWebhook(
        request: Portal_Audit_V1_CreateWebhookRequest, context: ServerContext
    ) async throws -> Portal_Audit_V1_CreateWebhookResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        let url = try await checkedURL(request.url)
        let types = try Self.webhookTypes(request.eventTypes)
        let secret = WebhookSignature.newSecret()
        let webhook = try await webhooks.store.create(
            organizationID: organizationID, url: url, eventTypes: types, description: request.description,
            sealedSecret: try sealed(secret), now: clock.milliseconds())
        var response = Portal_Audit_V1_CreateWebhookResponse()
        response.webhook = webhook.api
        response.secret = secret
        return response
    }

    public func listWebhooks(
        request: Portal_Audit_V1_ListWebhooksRequest, context: ServerContext
    ) async throws -> Portal_Audit_V1_ListWebhooksResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        var response = Portal_Audit_V1_ListWebhooksResponse()
        response.webhooks = try await webhooks.store.list(organizationID: organizationID).map(\.api)
        return response
    }

    public func updateWebhook(
        request: Portal_Audit_V1_UpdateWebhookRequest, context: ServerContext
    ) async throws -> Portal_Audit_V1_UpdateWebhookResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        let webhookID = try Self.required(request.webhookID, field: "webhook_id")
        var changes = WebhookStore.Changes()
        if request.setURL { changes.url = try await checkedURL(request.url) }
        if request.setEventTypes { changes.eventTypes = try Self.webhookTypes(request.eventTypes) }
        if request.setDescription { changes.description = request.description }
        if request.setEnabled { changes.enabled = request.enabled }
        var secret = ""
        if request.rotateSecret {
            secret = WebhookSignature.newSecret()
            changes.sealedSecret = try sealed(secret)
        }
        guard
            let webhook = try await webhooks.store.update(
                organizationID: organizationID, id: webhookID, changes: changes, now: clock.milliseconds())
        else { throw Self.noWebhook(webhookID) }
        var response = Portal_Audit_V1_UpdateWebhookResponse()
        response.webhook = webhook.api
        response.secret = secret
        return response
    }

    public func deleteWebhook(
        request: Portal_Audit_V1_DeleteWebhookRequest, context: ServerContext
    ) async throws -> Portal_Audit_V1_DeleteWebhookResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        let webhookID = try Self.required(request.webhookID, field: "webhook_id")
        guard try await webhooks.store.delete(organizationID: organizationID, id: webhookID) else {
            throw Self.noWebhook(webhookID)
        }
        return Portal_Audit_V1_DeleteWebhookResponse()
    }

    public func listDeliveries(
        request: Portal_Audit_V1_ListDeliveriesRequest, context: ServerContext
    ) async throws -> Portal_Audit_V1_ListDeliveriesResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        let webhookID = try Self.required(request.webhookID, field: "webhook_id")
        let state: DeliveryRecord.State? =
            switch request.state {
            case .unspecified: nil
            case .pending: .pending
            case .delivered: .delivered
            case .failed: .failed
            case .unrecognized: throw RPCError.invalidArgument(field: "state", "is not a delivery state")
            }
        let paging = try ListPaging(
            pageSize: request.pageSize, pageToken: request.pageToken, orderBy: "",
            columns: [SortColumn("queued", expression: "seq", isText: false)], defaultOrder: "queued desc",
            scope: PageTokenScope(
                pageTokens, list: "webhook deliveries",
                request: request.updating {
                    $0.pageToken = ""
                    $0.pageSize = 0
                }))
        guard
            let page = try await webhooks.store.deliveries(
                organizationID: organizationID, webhookID: webhookID, state: state, paging: paging)
        else { throw Self.noWebhook(webhookID) }
        var response = Portal_Audit_V1_ListDeliveriesResponse()
        response.deliveries = page.deliveries.map(\.api)
        response.nextPageToken = page.nextPageToken
        return response
    }

    public func redeliverEvent(
        request: Portal_Audit_V1_RedeliverEventRequest, context: ServerContext
    ) async throws -> Portal_Audit_V1_RedeliverEventResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        let webhookID = try Self.required(request.webhookID, field: "webhook_id")
        let eventID = try Self.required(request.eventID, field: "event_id")
        guard
            let delivery = try await webhooks.store.redeliver(
                organizationID: organizationID, webhookID: webhookID, eventID: eventID, now: clock.milliseconds())
        else {
            throw RPCError(
                .notFound,
                "no webhook \(RPCError.quote(webhookID)) with event \(RPCError.quote(eventID)) in this organization")
        }
        webhooks.dispatcher.wakeUp()
        var response = Portal_Audit_V1_RedeliverEventResponse()
        response.delivery = delivery.api
        return response
    }

    /// `secret` sealed with the service's key; FAILED_PRECONDITION when it has none.
    private func sealed(_ secret: String) throws -> [UInt8] {
        guard let box = webhooks.secrets else {
            throw RPCError(
                .failedPrecondition,
                "webhooks are not set up: the audit service on PostgreSQL needs PORTAL_WEBHOOK_SECRETS_KEY (32 bytes, base64), the same on every instance"
            )
        }
        return box.seal(Array(secret.utf8))
    }

    /// The URL checked against the target policy (its host resolved now), or INVALID_ARGUMENT naming `url`.
    private func checkedURL(_ text: String) async throws -> String {
        do {
            return try await webhooks.policy.check(text).text
        } catch let invalid as WebhookURL.Invalid {
            throw RPCError.invalidArgument(field: "url", invalid.description)
        } catch let refusal as WebhookTargetPolicy.Refusal {
            throw RPCError.invalidArgument(field: "url", refusal.description)
        }
    }

    private static func webhookTypes(_ types: [Portal_Audit_V1_EventType]) throws -> [String] {
        Array(Set(try storedTypes(types))).sorted()
    }

    private static func noWebhook(_ id: String) -> RPCError {
        RPCError(.notFound, "no webhook \(RPCError.quote(id)) in this organization")
    }
}
