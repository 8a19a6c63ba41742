internal import Metrics

/// Counters and timers of the service, through swift-metrics. The library never bootstraps a backend: its host does
/// (`enclave serve attestation` bootstraps Prometheus and serves it at `/metrics` through ``MetricsExposition``).
struct ServiceMetrics: Sendable {
    func record(type: AttestationType, result: String, since start: ContinuousClock.Instant) {
        let dimensions = [("type", type.rawValue), ("result", result)]
        Counter(label: "enclavekit_attestations_total", dimensions: dimensions).increment()
        let elapsed = ContinuousClock.now - start
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        Timer(label: "enclavekit_attestation_duration_seconds", dimensions: [("type", type.rawValue)])
            .recordNanoseconds(nanoseconds)
    }
}
