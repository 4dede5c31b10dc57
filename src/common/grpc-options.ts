import type { ChannelOptions } from '@grpc/grpc-js';

/**
 * Message limits sized for the API: a PutRecords of 5 MiB and a GetRecords of 10 MiB, with room
 * for framing and large records (10 MiB) later.
 */
export const GRPC_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

export const GRPC_CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': GRPC_MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': GRPC_MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  // Receive window of the client's connections (large GetRecords responses).
  'grpc-node.flow_control_window': 64 * 1024 * 1024,
};
