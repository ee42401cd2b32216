/**
 * A small protobuf encoder for the ONNX messages trend writes (ModelProto, GraphProto, NodeProto,
 * AttributeProto, TensorProto, ValueInfoProto), field numbers as in onnx/onnx.proto (IR version 7,
 * opset 13). Only encoding: every message is built bottom-up as bytes, and a sub-message is a
 * length-delimited field holding those bytes.
 */

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

function varint(v: bigint): number[] {
  // Negative int64 values are written as their 64-bit two's complement (ten bytes).
  let u = v < 0n ? (1n << 64n) + v : v;
  const out: number[] = [];
  do {
    let b = Number(u & 0x7fn);
    u >>= 7n;
    if (u > 0n) b |= 0x80;
    out.push(b);
  } while (u > 0n);
  return out;
}

function tag(field: number, wire: number): number[] {
  return varint(BigInt((field << 3) | wire));
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Field encoders: each returns the bytes of one field (tag and value). */
export const pb = {
  int(field: number, v: number | bigint): Uint8Array {
    return Uint8Array.from([...tag(field, WIRE_VARINT), ...varint(BigInt(v))]);
  },
  float(field: number, v: number): Uint8Array {
    const t = tag(field, WIRE_I32);
    const b = new Uint8Array(t.length + 4);
    b.set(t);
    new DataView(b.buffer).setFloat32(t.length, v, true);
    return b;
  },
  bytes(field: number, data: Uint8Array): Uint8Array {
    return concat([Uint8Array.from([...tag(field, WIRE_LEN), ...varint(BigInt(data.length))]), data]);
  },
  string(field: number, s: string): Uint8Array {
    return pb.bytes(field, new Uint8Array(Buffer.from(s, 'utf8')));
  },
  message(field: number, parts: Uint8Array[]): Uint8Array {
    return pb.bytes(field, concat(parts));
  },
  packedInts(field: number, vs: ReadonlyArray<number | bigint>): Uint8Array {
    return pb.bytes(field, Uint8Array.from(vs.flatMap((v) => varint(BigInt(v)))));
  },
  packedFloats(field: number, vs: ReadonlyArray<number>): Uint8Array {
    const b = new Uint8Array(vs.length * 4);
    const dv = new DataView(b.buffer);
    vs.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return pb.bytes(field, b);
  },
};

/** TensorProto.DataType */
export const DT = { FLOAT: 1, INT64: 7 } as const;
/** AttributeProto.AttributeType */
const AT = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

export type AttrValue = { f: number } | { i: number } | { s: string } | { floats: number[] } | { ints: number[] };

function attribute(name: string, v: AttrValue): Uint8Array {
  const parts = [pb.string(1, name)];
  if ('f' in v) parts.push(pb.float(2, v.f), pb.int(20, AT.FLOAT));
  else if ('i' in v) parts.push(pb.int(3, v.i), pb.int(20, AT.INT));
  else if ('s' in v) parts.push(pb.string(4, v.s), pb.int(20, AT.STRING));
  else if ('floats' in v) parts.push(pb.packedFloats(7, v.floats), pb.int(20, AT.FLOATS));
  else parts.push(pb.packedInts(8, v.ints), pb.int(20, AT.INTS));
  return concat(parts);
}

export interface NodeDef {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs?: Record<string, AttrValue>;
}

/** NodeProto: input 1, output 2, name 3, op_type 4, attribute 5. An empty input name is an omitted optional input. */
export function nodeProto(n: NodeDef): Uint8Array {
  return concat([
    ...n.inputs.map((i) => pb.string(1, i)),
    ...n.outputs.map((o) => pb.string(2, o)),
    pb.string(3, n.name),
    pb.string(4, n.op),
    ...Object.entries(n.attrs ?? {}).map(([k, v]) => pb.message(5, [attribute(k, v)])),
  ]);
}

/** TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian). */
export function tensorProto(name: string, dims: number[], data: Float32Array | BigInt64Array): Uint8Array {
  const raw = new Uint8Array(data.byteLength);
  const dv = new DataView(raw.buffer);
  if (data instanceof Float32Array) data.forEach((v, i) => dv.setFloat32(i * 4, v, true));
  else data.forEach((v, i) => dv.setBigInt64(i * 8, v, true));
  return concat([...dims.map((d) => pb.int(1, d)), pb.int(2, data instanceof Float32Array ? DT.FLOAT : DT.INT64), pb.string(8, name), pb.bytes(9, raw)]);
}

/** ValueInfoProto with a tensor type; a string dimension is symbolic (dim_param). */
export function valueInfo(name: string, elemType: number, dims: Array<number | string>): Uint8Array {
  const dim = (d: number | string) => pb.message(1, [typeof d === 'number' ? pb.int(1, d) : pb.string(2, d)]);
  const shape = pb.message(2, dims.map(dim));
  const tensorType = pb.message(1, [pb.int(1, elemType), shape]);
  return concat([pb.string(1, name), pb.message(2, [tensorType])]);
}

export interface GraphDef {
  name: string;
  nodes: NodeDef[];
  initializers: Uint8Array[];
  inputs: Uint8Array[];
  outputs: Uint8Array[];
  doc?: string;
}

/** GraphProto: node 1, name 2, initializer 5, doc_string 10, input 11, output 12. */
export function graphProto(g: GraphDef): Uint8Array {
  return concat([
    ...g.nodes.map((n) => pb.message(1, [nodeProto(n)])),
    pb.string(2, g.name),
    ...g.initializers.map((t) => pb.message(5, [t])),
    ...(g.doc ? [pb.string(10, g.doc)] : []),
    ...g.inputs.map((v) => pb.message(11, [v])),
    ...g.outputs.map((v) => pb.message(12, [v])),
  ]);
}

export const IR_VERSION = 7;
export const OPSET = 13;

/**
 * ModelProto: ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7,
 * opset_import 8 (domain 1, version 2), metadata_props 14 (key 1, value 2).
 */
export function modelProto(graph: GraphDef, producerVersion: string, doc: string, metadata: Record<string, string>): Uint8Array {
  return concat([
    pb.int(1, IR_VERSION),
    pb.string(2, 'trend'),
    pb.string(3, producerVersion),
    pb.string(6, doc),
    pb.message(7, [graphProto(graph)]),
    pb.message(8, [pb.string(1, ''), pb.int(2, OPSET)]),
    ...Object.entries(metadata).map(([k, v]) => pb.message(14, [pb.string(1, k), pb.string(2, v)])),
  ]);
}
