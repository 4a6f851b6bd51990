// Test-only stand-in for the `webrtc-polyfill` package, installed through npm
// `overrides` in the root package.json so that bittorrent-tracker-reference
// (via @thaunknown/simple-peer) gets a working WebRTC stack without
// node-datachannel, whose install step downloads a binary from outside the
// npm registry.
//
// @thaunknown/simple-peer only imports RTCPeerConnection, RTCSessionDescription
// and RTCIceCandidate. The other names below are the rest of webrtc-polyfill's
// public exports; where @roamhq/wrtc has no such class the export is
// undefined, which is what webrtc-polyfill's own browser entry does for a
// browser that lacks one.
//
// @roamhq/wrtc is resolved from the project root's node_modules (this
// directory lives inside the project and npm links it there), so it is not
// declared as a dependency here.
import wrtc from '@roamhq/wrtc'

export const RTCPeerConnection = wrtc.RTCPeerConnection
export const RTCSessionDescription = wrtc.RTCSessionDescription
export const RTCIceCandidate = wrtc.RTCIceCandidate
export const RTCIceTransport = wrtc.RTCIceTransport
export const RTCDataChannel = wrtc.RTCDataChannel
export const RTCSctpTransport = wrtc.RTCSctpTransport
export const RTCDtlsTransport = wrtc.RTCDtlsTransport
export const RTCCertificate = wrtc.RTCCertificate
export const MediaStream = wrtc.MediaStream
export const MediaStreamTrack = wrtc.MediaStreamTrack
export const MediaStreamTrackEvent = wrtc.MediaStreamTrackEvent
export const RTCPeerConnectionIceEvent = wrtc.RTCPeerConnectionIceEvent
export const RTCDataChannelEvent = wrtc.RTCDataChannelEvent
export const RTCTrackEvent = wrtc.RTCTrackEvent
export const RTCError = wrtc.RTCError
export const RTCErrorEvent = wrtc.RTCErrorEvent
export const RTCRtpTransceiver = wrtc.RTCRtpTransceiver
export const RTCRtpReceiver = wrtc.RTCRtpReceiver
export const RTCRtpSender = wrtc.RTCRtpSender

export default {
  RTCPeerConnection,
  RTCSessionDescription,
  RTCIceCandidate,
  RTCIceTransport,
  RTCDataChannel,
  RTCSctpTransport,
  RTCDtlsTransport,
  RTCCertificate,
  MediaStream,
  MediaStreamTrack,
  MediaStreamTrackEvent,
  RTCPeerConnectionIceEvent,
  RTCDataChannelEvent,
  RTCTrackEvent,
  RTCError,
  RTCErrorEvent,
  RTCRtpTransceiver,
  RTCRtpReceiver,
  RTCRtpSender
}
