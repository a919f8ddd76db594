/** File formats on bytes (no file system): safetensors, PyTorch .pth, numpy pickles, motion templates. */
export { type DType, type HostTensor, type StateDict, DTYPE_BYTES, toFloat32 } from './host_tensor.js';
export { parseSafetensors, serializeSafetensors, SafetensorsError, type SafetensorsFile } from './safetensors.js';
export { parsePth, flattenStateDict, PthError } from './pth.js';
export { readNumpyPickle } from './numpy_pickle.js';
export { type MotionFrame, type MotionTemplate, parseAnyTemplate, parseTemplate, readReferenceTemplate, templateToTensors, TemplateError } from './template.js';
export { syntheticStateDict, syntheticTensor } from '../models/synthetic.js';
