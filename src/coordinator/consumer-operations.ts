import {
  consumerArn,
  parseConsumerArn,
  streamArn,
  streamNameOfArn,
  type ServiceIdentity,
} from '../common/arn.js';
import type { Clock } from '../common/clock.js';
import { ResourceNotFoundError } from '../common/errors.js';
import { CONSUMER_NAME_PATTERN } from '../common/limits.js';
import { decodePageToken, encodePageToken } from '../common/page-token.js';
import { Validator } from '../common/validation.js';
import {
  ConsumerStatus,
  type Consumer,
  type ConsumerDescription,
  type DeregisterStreamConsumerRequest,
  type DescribeStreamConsumerRequest,
  type DescribeStreamConsumerResponse,
  type ListStreamConsumersRequest,
  type ListStreamConsumersResponse,
  type RegisterStreamConsumerRequest,
  type RegisterStreamConsumerResponse,
} from '../gen/rheos/v1/control.js';
import { consumersOf, requireConsumer } from './consumers.js';
import type { MetadataService } from './metadata-service.js';
import { streamNotFound } from './metadata-machine.js';
import type { ConsumerRecord, StreamRecord } from './model.js';

/**
 * RegisterStreamConsumer, DescribeStreamConsumer, ListStreamConsumers and
 * DeregisterStreamConsumer with Kinesis' request checks: consumers are named by the stream's ARN
 * (never its name) with the consumer's name, or by the consumer's ARN, which carries its creation
 * second, so the ARN of a deregistered consumer does not name a new one of the same name.
 */

export interface ConsumerOperationsOptions {
  readonly metadata: Pick<MetadataService, 'state' | 'propose'>;
  readonly clock: Clock;
  readonly identity: ServiceIdentity;
}

const STREAM_ARN_SHOWN = 'arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+';
const CONSUMER_ARN_SHOWN =
  '^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+';
const CONSUMER_NAME_SHOWN = '[a-zA-Z0-9_.-]+';
const LIST_MAX_RESULTS = 10_000;
const LIST_DEFAULT_RESULTS = 100;

interface ListConsumersToken {
  readonly stream: string;
  readonly incarnation: number;
  readonly after: number;
}

export class ConsumerOperations {
  constructor(private readonly options: ConsumerOperationsOptions) {}

  async register(request: RegisterStreamConsumerRequest): Promise<RegisterStreamConsumerResponse> {
    const v = new Validator();
    checkStreamArn(v, request.streamArn);
    checkConsumerName(v, request.consumerName);
    v.throwIfInvalid();
    const stream = this.streamOfArn(request.streamArn);
    await this.options.metadata.propose({
      type: 'registerConsumer',
      name: stream.name,
      consumerName: request.consumerName,
      nowMs: this.options.clock.nowMs(),
    });
    const now = this.streamOfArn(request.streamArn);
    const consumer = requireConsumer(now, request.consumerName, this.options.identity.accountId);
    return { consumer: this.consumer(now, consumer) };
  }

  describe(request: DescribeStreamConsumerRequest): DescribeStreamConsumerResponse {
    const { stream, consumer } = this.named(request);
    const summary = this.consumer(stream, consumer);
    const description: ConsumerDescription = {
      ...summary,
      streamArn: streamArn(this.options.identity, stream.name),
    };
    return { consumerDescription: description };
  }

  list(request: ListStreamConsumersRequest): ListStreamConsumersResponse {
    const v = new Validator();
    checkStreamArn(v, request.streamArn);
    if (request.maxResults !== undefined)
      v.range('maxResults', request.maxResults, 1, LIST_MAX_RESULTS);
    v.throwIfInvalid();
    const stream = this.streamOfArn(request.streamArn);
    if (
      request.streamCreationTimestampMs !== undefined &&
      Math.floor(request.streamCreationTimestampMs / 1000) !== Math.floor(stream.createdMs / 1000)
    ) {
      throw this.streamNotFound(stream.name);
    }
    const nowMs = this.options.clock.nowMs();
    let after = -1;
    if (request.nextToken !== '') {
      const token = decodePageToken('ListStreamConsumers', request.nextToken, nowMs, isToken);
      if (token.stream !== stream.name || token.incarnation !== stream.incarnation) {
        throw this.streamNotFound(stream.name);
      }
      after = token.after;
    }
    const limit = request.maxResults ?? LIST_DEFAULT_RESULTS;
    const all = consumersOf(stream);
    const page = all.slice(after + 1, after + 1 + limit);
    const last = after + page.length;
    return {
      consumers: page.map((c) => this.consumer(stream, c)),
      nextToken:
        last < all.length - 1
          ? encodePageToken(
              'ListStreamConsumers',
              { stream: stream.name, incarnation: stream.incarnation, after: last },
              nowMs,
            )
          : '',
    };
  }

  async deregister(request: DeregisterStreamConsumerRequest): Promise<void> {
    const { stream, consumer } = this.named(request);
    await this.options.metadata.propose({
      type: 'deregisterConsumer',
      name: stream.name,
      consumerName: consumer.name,
    });
  }

  /** The consumer a Describe or Deregister request names: by its ARN, or by stream and name. */
  private named(request: { streamArn: string; consumerName: string; consumerArn: string }): {
    stream: StreamRecord;
    consumer: ConsumerRecord;
  } {
    const v = new Validator();
    if (request.consumerArn !== '') {
      v.length('consumerARN', request.consumerArn, 1, 2048);
      if (parseConsumerArn(request.consumerArn) === undefined) {
        v.fail(
          'consumerARN',
          request.consumerArn,
          `Member must satisfy regular expression pattern: ${CONSUMER_ARN_SHOWN}`,
        );
      }
    } else if (request.streamArn === '' || request.consumerName === '') {
      // Kinesis: one of the two ways of naming a consumer must be given.
      v.required(request.streamArn === '' ? 'streamARN' : 'consumerName', '');
    }
    if (request.streamArn !== '') checkStreamArn(v, request.streamArn);
    if (request.consumerName !== '') checkConsumerName(v, request.consumerName);
    v.throwIfInvalid();
    const accountId = this.options.identity.accountId;
    if (request.consumerArn !== '') {
      const parsed = parseConsumerArn(request.consumerArn) as NonNullable<
        ReturnType<typeof parseConsumerArn>
      >;
      const stream = this.streamByName(parsed.streamName);
      const consumer = consumersOf(stream).find(
        (c) => c.name === parsed.consumerName && Math.floor(c.createdMs / 1000) === parsed.createdS,
      );
      if (consumer === undefined) {
        throw new ResourceNotFoundError(
          `Consumer ${request.consumerArn} under account ${accountId} not found.`,
        );
      }
      return { stream, consumer };
    }
    const stream = this.streamOfArn(request.streamArn);
    return { stream, consumer: requireConsumer(stream, request.consumerName, accountId) };
  }

  private consumer(stream: StreamRecord, consumer: ConsumerRecord): Consumer {
    return {
      consumerName: consumer.name,
      consumerArn: consumerArn(
        this.options.identity,
        stream.name,
        consumer.name,
        consumer.createdMs,
      ),
      consumerStatus: STATUS[consumer.status],
      consumerCreationTimestampMs: consumer.createdMs,
    };
  }

  private streamOfArn(arn: string): StreamRecord {
    return this.streamByName(streamNameOfArn(arn) as string);
  }

  private streamByName(name: string): StreamRecord {
    const stream = this.options.metadata.state.streams.get(name);
    if (stream === undefined) throw this.streamNotFound(name);
    return stream;
  }

  private streamNotFound(name: string): ResourceNotFoundError {
    return streamNotFound(name, this.options.identity);
  }
}

const STATUS: Record<ConsumerRecord['status'], ConsumerStatus> = {
  CREATING: ConsumerStatus.CONSUMER_STATUS_CREATING,
  ACTIVE: ConsumerStatus.CONSUMER_STATUS_ACTIVE,
  DELETING: ConsumerStatus.CONSUMER_STATUS_DELETING,
};

function checkStreamArn(v: Validator, arn: string): void {
  if (arn === '') {
    v.required('streamARN', arn);
    return;
  }
  v.length('streamARN', arn, 1, 2048);
  if (streamNameOfArn(arn) === undefined) {
    v.fail('streamARN', arn, `Member must satisfy regular expression pattern: ${STREAM_ARN_SHOWN}`);
  }
}

function checkConsumerName(v: Validator, name: string): void {
  if (name === '') {
    v.required('consumerName', name);
    return;
  }
  v.length('consumerName', name, 1, 128);
  v.pattern('consumerName', name, CONSUMER_NAME_PATTERN, CONSUMER_NAME_SHOWN);
}

function isToken(body: unknown): body is ListConsumersToken {
  const t = body as Partial<ListConsumersToken> | null;
  return (
    typeof t === 'object' &&
    t !== null &&
    typeof t.stream === 'string' &&
    typeof t.incarnation === 'number' &&
    typeof t.after === 'number' &&
    Number.isSafeInteger(t.after) &&
    t.after >= 0
  );
}
