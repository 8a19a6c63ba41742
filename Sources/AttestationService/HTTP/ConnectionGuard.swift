internal import HTTPTypes
internal import Logging
internal import NIOCore
internal import NIOHTTPTypes

/// Per-connection deadlines, so that no client can hold a connection (a file descriptor) open without making progress:
/// a complete request head within ``AttestationServer/ConnectionLimits/headerTimeout`` of the connection opening
/// (TLS handshake included), the whole request body within ``AttestationServer/ConnectionLimits/bodyTimeout`` of its
/// head, the next request's head within ``AttestationServer/ConnectionLimits/idleTimeout`` of the previous response.
///
/// A refused request (413, 414, 431, or any response the server ends with `Connection: close`, such as the 400 for
/// an unparsable or oversize head) ends the connection: the server's side is shut for writing after the response,
/// the client gets ``AttestationServer/ConnectionLimits/lingerTimeout`` to read it, and then the descriptor is closed
/// whatever the client does (a half-closed connection used to wait for the client forever, in FIN-WAIT-2).
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        case awaitingHead, readingBody, processing, closing
    }

    private let limits: AttestationServer.ConnectionLimits
    private let logger: Logger
    private var state = State.awaitingHead
    private var servedRequests = 0
    private var closeAfterResponse = false
    private var deadline: Scheduled<Void>?
    /// When the current body's deadline falls (``AttestationServer/ConnectionLimits/minimumBodyRate`` moves it).
    private var bodyDeadline: NIODeadline?
    /// The current body's deadline without its extension, and the bytes received of it.
    private var bodyStart = NIODeadline.uptimeNanoseconds(0)
    private var bodyBytes: Int64 = 0

    init(limits: AttestationServer.ConnectionLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        arm(context, after: limits.headerTimeout, reason: "no complete request head")
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            if state != .closing {
                state = .readingBody
                bodyStart = context.eventLoop.now
                bodyBytes = 0
                bodyDeadline = bodyStart + limits.bodyTimeout
                arm(context, after: limits.bodyTimeout, reason: "the request body did not arrive in time")
            }
        case .body(let part):
            extendBodyDeadline(context, by: part.readableBytes)
        case .end:
            if state == .readingBody {
                state = .processing
                disarm()
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let response):
            let status = response.status.code
            if [413, 414, 431].contains(status) || response.headerFields[.connection]?.lowercased() == "close" {
                closeAfterResponse = true
            }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            servedRequests += 1
            if closeAfterResponse {
                context.writeAndFlush(data, promise: promise)
                shutDown(context)
            } else {
                context.write(data, promise: promise)
                if state == .processing {
                    state = .awaitingHead
                    arm(context, after: limits.idleTimeout, reason: "idle")
                }
            }
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // The HTTP layer shuts its side for writing and waits for the client to close: bound that wait.
        if mode == .output { lingerThenClose(context) }
        context.close(mode: mode, promise: promise)
    }

    /// Shut the server's side for writing and close fully after the linger time.
    private func shutDown(_ context: ChannelHandlerContext) {
        guard state != .closing else { return }
        lingerThenClose(context)
        context.close(mode: .output, promise: nil)
    }

    private func lingerThenClose(_ context: ChannelHandlerContext) {
        guard state != .closing else { return }
        state = .closing
        arm(context, after: limits.lingerTimeout, reason: "closing after a refused or final response")
    }

    /// With a minimum body rate, `bytes` more of the body move its deadline `bytes`/rate later (re-armed once it
    /// moved by a second or more, not on every chunk).
    private func extendBodyDeadline(_ context: ChannelHandlerContext, by bytes: Int) {
        guard let rate = limits.minimumBodyRate, state == .readingBody, let current = bodyDeadline else { return }
        bodyBytes += Int64(bytes)
        let earned = TimeAmount.nanoseconds(Int64(Double(bodyBytes) / Double(rate) * 1e9))
        let extended = bodyStart + limits.bodyTimeout + earned
        guard extended - current >= .seconds(1) else { return }
        bodyDeadline = extended
        arm(
            context,
            after: extended - context.eventLoop.now,
            reason: "the request body arrived slower than the minimum rate"
        )
    }

    private func arm(_ context: ChannelHandlerContext, after timeout: TimeAmount, reason: String) {
        deadline?.cancel()
        let logger = self.logger
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            logger.debug("closing connection", metadata: ["reason": "\(reason)"])
            channel.close(mode: .all, promise: nil)
        }
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
    }
}

@available(*, unavailable)
extension ConnectionGuard: Sendable {}
