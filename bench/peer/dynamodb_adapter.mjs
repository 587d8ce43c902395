// node-oidc-provider's storage on DynamoDB, for the peer bench (bench/peer_bench.py --node-store dynamodb):
// written here to the design of the example node-oidc-provider publishes (example/adapters/dynamodb.ts),
// on AWS SDK v3 (@aws-sdk/client-dynamodb and its document client, @aws-sdk/lib-dynamodb):
//
// - one table, partition key `modelId` ("<Model>-<id>"), TTL attribute `expiresAt` (epoch seconds);
// - three global secondary indexes, each on an attribute copied out of the payload at upsert:
//   uidIndex (uid: a Session by its uid), grantIdIndex (grantId: what revokeByGrantId deletes) and
//   userCodeIndex (userCode: the device flow's, unused by the bench but part of the design);
// - upsert = one UpdateItem; find = one GetItem; findByUid / findByUserCode = one Query (Limit 1);
//   consume = one conditional UpdateItem of payload.consumed; destroy = one DeleteItem;
//   revokeByGrantId = a Query of 25 keys at a time, each page deleted by one BatchWriteItem.
//
// As the example does, an item past its expiresAt is not returned (DynamoDB's TTL deletes it up to two
// days late). Every call is counted per operation and model (`calls`), which server.mjs shows the bench.
import {
  CreateTableCommand, DynamoDBClient, ResourceInUseException, UpdateTimeToLiveCommand, waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand, DeleteCommand, DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand,
} from '@aws-sdk/lib-dynamodb';

const INDEXES = ['uid', 'grantId', 'userCode'];
const REVOKE_PAGE = 25; // BatchWriteItem's most requests per call

// "<Operation> <Model>" -> calls so far (this process's, since it started).
export const calls = {};

function count(operation, model) {
  const key = `${operation} ${model}`;
  calls[key] = (calls[key] ?? 0) + 1;
}

// The SDK client for `endpoint` (the bench's DynamoDB Local): region and credentials given here, so the
// SDK never looks for them (no environment, profile files, SSO or instance metadata on the way).
export function documentClient(endpoint) {
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  // node-oidc-provider's payloads leave optional claims undefined, which DynamoDB cannot store.
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

// The table of the design, made at start unless it is there already (not counted in `calls`).
export async function createTable(db, tableName) {
  try {
    await db.send(new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: ['modelId', ...INDEXES].map((name) => ({ AttributeName: name, AttributeType: 'S' })),
      KeySchema: [{ AttributeName: 'modelId', KeyType: 'HASH' }],
      GlobalSecondaryIndexes: INDEXES.map((name) => ({
        IndexName: `${name}Index`,
        KeySchema: [{ AttributeName: name, KeyType: 'HASH' }],
        Projection: { ProjectionType: 'ALL' },
      })),
    }));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
    return;
  }
  await waitUntilTableExists({ client: db, maxWaitTime: 60 }, { TableName: tableName });
  await db.send(new UpdateTimeToLiveCommand({
    TableName: tableName,
    TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
  }));
}

function live(item) {
  if (!item || (item.expiresAt && Date.now() > item.expiresAt * 1000)) return undefined;
  return item.payload;
}

// The adapter class node-oidc-provider's `adapter` setting takes (one instance per model name), bound
// to one document client and table.
export function dynamoDBAdapter(db, tableName) {
  return class DynamoDBAdapter {
    constructor(name) {
      this.name = name;
    }

    key(id) {
      return { modelId: `${this.name}-${id}` };
    }

    async upsert(id, payload, expiresIn) {
      const values = { ':payload': payload };
      if (expiresIn) values[':expiresAt'] = Math.floor(Date.now() / 1000) + expiresIn;
      for (const name of INDEXES) {
        if (payload[name]) values[`:${name}`] = payload[name];
      }
      const names = Object.fromEntries(Object.keys(values).map((value) => [`#${value.slice(1)}`, value.slice(1)]));
      const set = Object.keys(values).map((value) => `#${value.slice(1)} = ${value}`);
      count('UpdateItem', this.name);
      await db.send(new UpdateCommand({
        TableName: tableName,
        Key: this.key(id),
        UpdateExpression: `SET ${set.join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }));
    }

    async find(id) {
      count('GetItem', this.name);
      const { Item } = await db.send(new GetCommand({
        TableName: tableName,
        Key: this.key(id),
        ProjectionExpression: 'payload, expiresAt',
      }));
      return live(Item);
    }

    async findByIndex(name, value) {
      count('Query', this.name);
      const { Items } = await db.send(new QueryCommand({
        TableName: tableName,
        IndexName: `${name}Index`,
        KeyConditionExpression: `${name} = :value`,
        ExpressionAttributeValues: { ':value': value },
        Limit: 1,
        ProjectionExpression: 'payload, expiresAt',
      }));
      return live(Items?.[0]);
    }

    async findByUid(uid) {
      return this.findByIndex('uid', uid);
    }

    async findByUserCode(userCode) {
      return this.findByIndex('userCode', userCode);
    }

    async consume(id) {
      count('UpdateItem', this.name);
      await db.send(new UpdateCommand({
        TableName: tableName,
        Key: this.key(id),
        UpdateExpression: 'SET #payload.#consumed = :value',
        ExpressionAttributeNames: { '#payload': 'payload', '#consumed': 'consumed' },
        ExpressionAttributeValues: { ':value': Math.floor(Date.now() / 1000) },
        ConditionExpression: 'attribute_exists(modelId)',
      }));
    }

    async destroy(id) {
      count('DeleteItem', this.name);
      await db.send(new DeleteCommand({ TableName: tableName, Key: this.key(id) }));
    }

    async revokeByGrantId(grantId) {
      let ExclusiveStartKey;
      do {
        count('Query', this.name);
        // eslint-disable-next-line no-await-in-loop -- each page's keys come from the one before
        const page = await db.send(new QueryCommand({
          TableName: tableName,
          IndexName: 'grantIdIndex',
          KeyConditionExpression: 'grantId = :grantId',
          ExpressionAttributeValues: { ':grantId': grantId },
          ProjectionExpression: 'modelId',
          Limit: REVOKE_PAGE,
          ExclusiveStartKey,
        }));
        ExclusiveStartKey = page.LastEvaluatedKey;
        if (!page.Items?.length) return;
        count('BatchWriteItem', this.name);
        // eslint-disable-next-line no-await-in-loop
        await db.send(new BatchWriteCommand({
          RequestItems: {
            [tableName]: page.Items.map(({ modelId }) => ({ DeleteRequest: { Key: { modelId } } })),
          },
        }));
      } while (ExclusiveStartKey);
    }
  };
}
