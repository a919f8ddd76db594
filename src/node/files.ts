/**
 * Files on disk for the formats of src/formats (Node): each reader reads the
 * bytes and hands them to the format's parser; each writer writes to a
 * temporary name and renames it when complete. Errors name the file.
 */
import { readFileSync } from 'node:fs';
import { type SafetensorsFile, SafetensorsError, parseSafetensors, serializeSafetensors } from '../formats/safetensors.js';
import { PthError, flattenStateDict, parsePth } from '../formats/pth.js';
import { type MotionTemplate, TemplateError, parseAnyTemplate, templateToTensors } from '../formats/template.js';
import type { HostTensor, StateDict } from '../formats/host_tensor.js';
import { writeFileAtomic } from './output.js';

/** The bytes of `path`; a read failure becomes `fail(reason)`. */
export function readBytes(path: string, fail: (reason: string) => Error): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw fail(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

export function readSafetensors(path: string): SafetensorsFile {
  return parseSafetensors(readBytes(path, (r) => new SafetensorsError(path, r)), path);
}

/** Write atomically: to a temporary name first, renamed when complete. */
export function writeSafetensors(path: string, tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

/** Read a .pth file: its pickled object, with dicts as Map and tensors as HostTensor. */
export function readPth(path: string): unknown {
  return parsePth(readBytes(path, (r) => new PthError(path, r)), path);
}

/** Read a .pth file as a flat state dict (see flattenStateDict). */
export function readPthStateDict(path: string): StateDict {
  return flattenStateDict(readPth(path), path);
}

/** Write a motion template in this library's format (see src/formats/template.ts). */
export function saveTemplate(path: string, tpl: MotionTemplate): void {
  const { tensors, metadata } = templateToTensors(tpl);
  writeSafetensors(path, tensors, metadata);
}

/**
 * Load a motion template from a file: our safetensors format or the
 * reference's `.pkl`, told apart by content. Anything else is a one-line error.
 */
export function loadTemplate(path: string): MotionTemplate {
  return parseAnyTemplate(readBytes(path, (r) => new TemplateError(`${path}: cannot read motion template ${r.replace('cannot read ', '')}`)), path);
}
