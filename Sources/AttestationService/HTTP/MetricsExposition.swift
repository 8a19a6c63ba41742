/// What `GET /metrics` answers, handed to the server by whoever bootstrapped the metrics system.
///
/// The library records its counters and timers through swift-metrics and never bootstraps a
/// backend: a process bootstraps `MetricsSystem` once, so that choice is the host's. `enclave serve attestation`
/// bootstraps Prometheus and passes its registry's text exposition here; without one, `/metrics` is not served.
public struct MetricsExposition: Sendable {
    /// The response's content type (Prometheus text: `text/plain; version=0.0.4`).
    public var contentType: String
    /// The metrics as the response body, rendered at each request.
    public var render: @Sendable () -> [UInt8]

    /// An exposition of `contentType` rendered by `render`.
    public init(
        contentType: String = "text/plain; version=0.0.4",
        render: @escaping @Sendable () -> [UInt8]
    ) {
        self.contentType = contentType
        self.render = render
    }
}
