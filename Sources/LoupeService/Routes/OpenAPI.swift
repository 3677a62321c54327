// The OpenAPI 3 document served at /openapi.json. docs/openapi.yaml holds the same JSON text
// (JSON is YAML), checked by a test; edit both together.
enum OpenAPI {
    static let document: JSONValue = {
        do { return try JSONReader.parse(Array(text.utf8)) } catch { preconditionFailure("OpenAPI.text is not JSON: \(error)") }
    }()

    static let text = #"""
{
 "openapi": "3.0.3",
 "info": {
  "title": "Loupe inference service",
  "version": "0.1.0",
  "description": "Classifies 28×28 grayscale images with models from a model repository. Errors are always JSON {\"error\": sentence, \"code\": machine_code}. Every response carries X-Request-ID. HEAD is answered wherever GET is; other methods on a known path get 405 with Allow; unknown paths get a JSON 404. See docs/api.md."
 },
 "paths": {
  "/predict": {
   "post": {
    "summary": "Classify one or many 28×28 grayscale images.",
    "operationId": "predict",
    "parameters": [
     {
      "name": "top_k",
      "in": "query",
      "schema": {
       "type": "integer",
       "minimum": 0
      },
      "description": "Classes listed in each prediction's top_k (default inference.default_top_k = 3; at most the class count)."
     },
     {
      "name": "model",
      "in": "query",
      "schema": {
       "type": "string"
      },
      "description": "Model name (default: models.default, else the only/first model)."
     },
     {
      "name": "version",
      "in": "query",
      "schema": {
       "type": "integer",
       "minimum": 1
      },
      "description": "Model version (default: the latest served)."
     },
     {
      "name": "resize",
      "in": "query",
      "schema": {
       "type": "boolean"
      },
      "description": "Scale PNG/PGM images of another size to 28×28 (area averaging, as `loupe predict`). Off by default: another size is a 400."
     }
    ],
    "requestBody": {
     "required": true,
     "content": {
      "image/png": {
       "schema": {
        "type": "string",
        "format": "binary"
       },
       "description": "One PNG, any bit depth and colour type (converted to gray)."
      },
      "image/x-portable-graymap": {
       "schema": {
        "type": "string",
        "format": "binary"
       },
       "description": "One PGM (P5 or P2)."
      },
      "application/octet-stream": {
       "schema": {
        "type": "string",
        "format": "binary"
       },
       "description": "N×784 bytes: N images, row-major, one byte per pixel (0-255)."
      },
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/Instances"
       }
      },
      "multipart/form-data": {
       "schema": {
        "type": "object",
        "properties": {
         "image": {
          "type": "array",
          "items": {
           "type": "string",
           "format": "binary"
          }
         }
        }
       },
       "description": "File parts (any part with a filename, an image/* type, or named image/images/file/files), e.g. `curl -F image=@x.png`."
      }
     }
    },
    "responses": {
     "200": {
      "description": "One prediction per image, in order.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/PredictResponse"
        }
       }
      },
      "headers": {
       "Server-Timing": {
        "schema": {
         "type": "string"
        },
        "description": "queue;dur=<ms>, inference;dur=<ms>"
       },
       "X-Request-ID": {
        "schema": {
         "type": "string"
        },
        "description": "The request's id (echoed, or generated)."
       }
      }
     },
     "400": {
      "description": "Bad input: not an image, corrupt PNG, wrong size or shape, bad JSON, empty body, bad parameter. The sentence says what was expected and what came.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "404": {
      "description": "No such model or version (`model_not_found`).",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "411": {
      "description": "A body without Content-Length or chunked encoding.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "413": {
      "description": "Body larger than limits.max_body_bytes, or more images than limits.max_images_per_request.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "415": {
      "description": "Unsupported Content-Type.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "503": {
      "description": "Not ready (`not_ready`), draining (`draining`) or the queue is full (`queue_full`).",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      },
      "headers": {
       "Retry-After": {
        "schema": {
         "type": "integer"
        },
        "description": "Seconds to wait before retrying."
       }
      }
     }
    }
   }
  },
  "/health": {
   "get": {
    "summary": "Overall status: models, queue depth, uptime, start-to-ready.",
    "responses": {
     "200": {
      "description": "Ready.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Health"
        }
       }
      }
     },
     "503": {
      "description": "Not ready or draining (same body, status not_ready/draining).",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Health"
        }
       }
      },
      "headers": {
       "Retry-After": {
        "schema": {
         "type": "integer"
        },
        "description": "Seconds to wait before retrying."
       }
      }
     }
    }
   }
  },
  "/health/live": {
   "get": {
    "summary": "Liveness: the process answers.",
    "responses": {
     "200": {
      "description": "Alive.",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     }
    }
   }
  },
  "/health/ready": {
   "get": {
    "summary": "Readiness: a model is loaded and passed its self-test, and the server is not draining.",
    "responses": {
     "200": {
      "description": "Ready.",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "503": {
      "description": "Not ready (`not_ready`), draining (`draining`) or the queue is full (`queue_full`).",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      },
      "headers": {
       "Retry-After": {
        "schema": {
         "type": "integer"
        },
        "description": "Seconds to wait before retrying."
       }
      }
     }
    }
   }
  },
  "/metrics": {
   "get": {
    "summary": "Prometheus text format 0.0.4 (gzip with Accept-Encoding: gzip).",
    "responses": {
     "200": {
      "description": "Metrics.",
      "content": {
       "text/plain; version=0.0.4": {
        "schema": {
         "type": "string"
        }
       }
      }
     }
    }
   }
  },
  "/openapi.json": {
   "get": {
    "summary": "This document.",
    "responses": {
     "200": {
      "description": "OpenAPI 3 document.",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     }
    }
   }
  },
  "/v2": {
   "get": {
    "summary": "KServe v2 server metadata.",
    "responses": {
     "200": {
      "description": "Name, version, extensions.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/ServerMetadata"
        }
       }
      }
     }
    }
   }
  },
  "/v2/health/live": {
   "get": {
    "summary": "KServe v2 liveness.",
    "responses": {
     "200": {
      "description": "Alive.",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     }
    }
   }
  },
  "/v2/health/ready": {
   "get": {
    "summary": "KServe v2 readiness (same as /health/ready).",
    "responses": {
     "200": {
      "description": "Ready.",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "503": {
      "description": "Not ready (`not_ready`), draining (`draining`) or the queue is full (`queue_full`).",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      },
      "headers": {
       "Retry-After": {
        "schema": {
         "type": "integer"
        },
        "description": "Seconds to wait before retrying."
       }
      }
     }
    }
   }
  },
  "/v2/models/{m}": {
   "parameters": [
    {
     "name": "m",
     "in": "path",
     "required": true,
     "schema": {
      "type": "string"
     },
     "description": "Model name."
    }
   ],
   "get": {
    "summary": "KServe v2 model metadata.",
    "responses": {
     "200": {
      "description": "Metadata.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/ModelMetadata"
        }
       }
      }
     },
     "404": {
      "description": "No such model or version.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     }
    }
   }
  },
  "/v2/models/{m}/versions/{v}": {
   "parameters": [
    {
     "name": "m",
     "in": "path",
     "required": true,
     "schema": {
      "type": "string"
     },
     "description": "Model name."
    },
    {
     "name": "v",
     "in": "path",
     "required": true,
     "schema": {
      "type": "integer",
      "minimum": 1
     },
     "description": "Model version."
    }
   ],
   "get": {
    "summary": "KServe v2 model metadata.",
    "responses": {
     "200": {
      "description": "Metadata.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/ModelMetadata"
        }
       }
      }
     },
     "404": {
      "description": "No such model or version.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     }
    }
   }
  },
  "/v2/models/{m}/ready": {
   "parameters": [
    {
     "name": "m",
     "in": "path",
     "required": true,
     "schema": {
      "type": "string"
     },
     "description": "Model name."
    }
   ],
   "get": {
    "summary": "KServe v2 model readiness: 200 when servable.",
    "responses": {
     "200": {
      "description": "Ready.",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "404": {
      "description": "No such model or version.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "503": {
      "description": "Not ready (`not_ready`), draining (`draining`) or the queue is full (`queue_full`).",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      },
      "headers": {
       "Retry-After": {
        "schema": {
         "type": "integer"
        },
        "description": "Seconds to wait before retrying."
       }
      }
     }
    }
   }
  },
  "/v2/models/{m}/versions/{v}/ready": {
   "parameters": [
    {
     "name": "m",
     "in": "path",
     "required": true,
     "schema": {
      "type": "string"
     },
     "description": "Model name."
    },
    {
     "name": "v",
     "in": "path",
     "required": true,
     "schema": {
      "type": "integer",
      "minimum": 1
     },
     "description": "Model version."
    }
   ],
   "get": {
    "summary": "KServe v2 model readiness: 200 when servable.",
    "responses": {
     "200": {
      "description": "Ready.",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "404": {
      "description": "No such model or version.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "503": {
      "description": "Not ready (`not_ready`), draining (`draining`) or the queue is full (`queue_full`).",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      },
      "headers": {
       "Retry-After": {
        "schema": {
         "type": "integer"
        },
        "description": "Seconds to wait before retrying."
       }
      }
     }
    }
   }
  },
  "/v2/models/{m}/infer": {
   "parameters": [
    {
     "name": "m",
     "in": "path",
     "required": true,
     "schema": {
      "type": "string"
     },
     "description": "Model name."
    }
   ],
   "post": {
    "summary": "KServe v2 inference (JSON tensor data; the binary extension is refused).",
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/InferRequest"
       }
      }
     }
    },
    "responses": {
     "200": {
      "description": "Inference result.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/InferResponse"
        }
       }
      },
      "headers": {
       "Server-Timing": {
        "schema": {
         "type": "string"
        },
        "description": "queue;dur=<ms>, inference;dur=<ms>"
       },
       "X-Request-ID": {
        "schema": {
         "type": "string"
        },
        "description": "The request's id (echoed, or generated)."
       }
      }
     },
     "400": {
      "description": "Bad request: datatype, shape, data count, input/output name, binary data (`binary_data_unsupported`).",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "404": {
      "description": "No such model or version.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "413": {
      "description": "Too many images.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "503": {
      "description": "Not ready (`not_ready`), draining (`draining`) or the queue is full (`queue_full`).",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      },
      "headers": {
       "Retry-After": {
        "schema": {
         "type": "integer"
        },
        "description": "Seconds to wait before retrying."
       }
      }
     }
    }
   }
  },
  "/v2/models/{m}/versions/{v}/infer": {
   "parameters": [
    {
     "name": "m",
     "in": "path",
     "required": true,
     "schema": {
      "type": "string"
     },
     "description": "Model name."
    },
    {
     "name": "v",
     "in": "path",
     "required": true,
     "schema": {
      "type": "integer",
      "minimum": 1
     },
     "description": "Model version."
    }
   ],
   "post": {
    "summary": "KServe v2 inference (JSON tensor data; the binary extension is refused).",
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/InferRequest"
       }
      }
     }
    },
    "responses": {
     "200": {
      "description": "Inference result.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/InferResponse"
        }
       }
      },
      "headers": {
       "Server-Timing": {
        "schema": {
         "type": "string"
        },
        "description": "queue;dur=<ms>, inference;dur=<ms>"
       },
       "X-Request-ID": {
        "schema": {
         "type": "string"
        },
        "description": "The request's id (echoed, or generated)."
       }
      }
     },
     "400": {
      "description": "Bad request: datatype, shape, data count, input/output name, binary data (`binary_data_unsupported`).",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "404": {
      "description": "No such model or version.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "413": {
      "description": "Too many images.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "503": {
      "description": "Not ready (`not_ready`), draining (`draining`) or the queue is full (`queue_full`).",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      },
      "headers": {
       "Retry-After": {
        "schema": {
         "type": "integer"
        },
        "description": "Seconds to wait before retrying."
       }
      }
     }
    }
   }
  },
  "/v2/repository/index": {
   "post": {
    "summary": "Triton repository extension: list models (only when repository_api.enabled; bearer token when repository_api.token is set).",
    "responses": {
     "200": {
      "description": "Index.",
      "content": {
       "application/json": {
        "schema": {
         "type": "array",
         "items": {
          "type": "object"
         }
        }
       }
      }
     },
     "401": {
      "description": "Missing or wrong bearer token.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "404": {
      "description": "Repository API disabled.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     }
    }
   }
  },
  "/v2/repository/models/{m}/load": {
   "parameters": [
    {
     "name": "m",
     "in": "path",
     "required": true,
     "schema": {
      "type": "string"
     },
     "description": "Model name."
    }
   ],
   "post": {
    "summary": "Triton repository extension: (re)load a model.",
    "responses": {
     "200": {
      "description": "Loaded.",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "400": {
      "description": "Load failed; the old version keeps serving.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "401": {
      "description": "Missing or wrong bearer token.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "404": {
      "description": "Unknown model or API disabled.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     }
    }
   }
  },
  "/v2/repository/models/{m}/unload": {
   "parameters": [
    {
     "name": "m",
     "in": "path",
     "required": true,
     "schema": {
      "type": "string"
     },
     "description": "Model name."
    }
   ],
   "post": {
    "summary": "Triton repository extension: stop serving a model.",
    "responses": {
     "200": {
      "description": "Unloaded.",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "401": {
      "description": "Missing or wrong bearer token.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     },
     "404": {
      "description": "Unknown model or API disabled.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Error"
        }
       }
      }
     }
    }
   }
  }
 },
 "components": {
  "schemas": {
   "Error": {
    "type": "object",
    "required": [
     "error",
     "code"
    ],
    "properties": {
     "error": {
      "type": "string",
      "description": "A human sentence: what was expected and what came."
     },
     "code": {
      "type": "string",
      "description": "Machine code, e.g. invalid_image, wrong_image_size, wrong_input_size, invalid_json, invalid_input, invalid_parameter, empty_body, unsupported_media_type, payload_too_large, model_not_found, not_found, method_not_allowed, not_ready, draining, queue_full, binary_data_unsupported, invalid_shape, invalid_datatype, invalid_output, internal_error."
     }
    }
   },
   "Instances": {
    "type": "object",
    "required": [
     "instances"
    ],
    "properties": {
     "instances": {
      "type": "array",
      "items": {
       "oneOf": [
        {
         "type": "array",
         "items": {
          "type": "integer",
          "minimum": 0,
          "maximum": 255
         },
         "minItems": 784,
         "maxItems": 784,
         "description": "784 pixel values, row-major."
        },
        {
         "type": "array",
         "items": {
          "type": "array",
          "items": {
           "type": "integer",
           "minimum": 0,
           "maximum": 255
          },
          "minItems": 28,
          "maxItems": 28
         },
         "minItems": 28,
         "maxItems": 28,
         "description": "28 rows of 28 pixel values."
        },
        {
         "type": "object",
         "required": [
          "b64"
         ],
         "properties": {
          "b64": {
           "type": "string",
           "description": "Base64 PNG or PGM."
          }
         }
        }
       ]
      }
     }
    }
   },
   "TopK": {
    "type": "object",
    "properties": {
     "class": {
      "type": "integer"
     },
     "label": {
      "type": "string"
     },
     "confidence": {
      "type": "number"
     }
    }
   },
   "Prediction": {
    "type": "object",
    "properties": {
     "class": {
      "type": "integer"
     },
     "label": {
      "type": "string"
     },
     "confidence": {
      "type": "number",
      "description": "Top-1 probability."
     },
     "top_k": {
      "type": "array",
      "items": {
       "$ref": "#/components/schemas/TopK"
      }
     },
     "probabilities": {
      "type": "array",
      "items": {
       "type": "number"
      },
      "description": "Softmax output, one per class."
     }
    }
   },
   "PredictResponse": {
    "type": "object",
    "properties": {
     "model": {
      "type": "string"
     },
     "model_version": {
      "type": "integer"
     },
     "predictions": {
      "type": "array",
      "items": {
       "$ref": "#/components/schemas/Prediction"
      }
     }
    }
   },
   "Health": {
    "type": "object",
    "properties": {
     "status": {
      "type": "string",
      "enum": [
       "ready",
       "not_ready",
       "draining"
      ]
     },
     "version": {
      "type": "string"
     },
     "uptime_seconds": {
      "type": "number"
     },
     "start_to_ready_seconds": {
      "type": "number"
     },
     "queue_depth": {
      "type": "integer"
     },
     "models": {
      "type": "array",
      "items": {
       "type": "object",
       "properties": {
        "name": {
         "type": "string"
        },
        "version": {
         "type": "integer"
        },
        "sha256": {
         "type": "string"
        }
       }
      }
     }
    }
   },
   "ServerMetadata": {
    "type": "object",
    "properties": {
     "name": {
      "type": "string"
     },
     "version": {
      "type": "string"
     },
     "extensions": {
      "type": "array",
      "items": {
       "type": "string"
      }
     }
    }
   },
   "Tensor": {
    "type": "object",
    "properties": {
     "name": {
      "type": "string"
     },
     "datatype": {
      "type": "string"
     },
     "shape": {
      "type": "array",
      "items": {
       "type": "integer"
      }
     }
    }
   },
   "ModelMetadata": {
    "type": "object",
    "properties": {
     "name": {
      "type": "string"
     },
     "versions": {
      "type": "array",
      "items": {
       "type": "string"
      }
     },
     "platform": {
      "type": "string"
     },
     "inputs": {
      "type": "array",
      "items": {
       "$ref": "#/components/schemas/Tensor"
      }
     },
     "outputs": {
      "type": "array",
      "items": {
       "$ref": "#/components/schemas/Tensor"
      }
     },
     "parameters": {
      "type": "object"
     }
    }
   },
   "InferRequest": {
    "type": "object",
    "required": [
     "inputs"
    ],
    "properties": {
     "id": {
      "type": "string"
     },
     "parameters": {
      "type": "object",
      "properties": {
       "classification": {
        "type": "integer",
        "minimum": 0
       }
      }
     },
     "inputs": {
      "type": "array",
      "minItems": 1,
      "maxItems": 1,
      "items": {
       "type": "object",
       "required": [
        "name",
        "datatype",
        "shape",
        "data"
       ],
       "properties": {
        "name": {
         "type": "string",
         "enum": [
          "input"
         ]
        },
        "datatype": {
         "type": "string",
         "enum": [
          "FP32",
          "UINT8"
         ],
         "description": "FP32: model-ready values (pixels/255 for the shipped models); UINT8: pixels 0-255."
        },
        "shape": {
         "type": "array",
         "items": {
          "type": "integer"
         },
         "description": "[N,784], [N,28,28], [N,1,28,28] or [N,28,28,1]."
        },
        "data": {
         "type": "array",
         "items": {},
         "description": "Row-major numbers, flat or nested."
        }
       }
      }
     },
     "outputs": {
      "type": "array",
      "items": {
       "type": "object",
       "properties": {
        "name": {
         "type": "string",
         "enum": [
          "probabilities"
         ]
        },
        "parameters": {
         "type": "object",
         "properties": {
          "classification": {
           "type": "integer",
           "minimum": 0,
           "description": "Top-k classes as BYTES \"score:index:label\"."
          },
          "binary_data": {
           "type": "boolean",
           "description": "Ignored: outputs are JSON."
          }
         }
        }
       }
      }
     }
    }
   },
   "InferResponse": {
    "type": "object",
    "properties": {
     "model_name": {
      "type": "string"
     },
     "model_version": {
      "type": "string"
     },
     "id": {
      "type": "string"
     },
     "outputs": {
      "type": "array",
      "items": {
       "type": "object",
       "properties": {
        "name": {
         "type": "string"
        },
        "datatype": {
         "type": "string",
         "enum": [
          "FP32",
          "BYTES"
         ]
        },
        "shape": {
         "type": "array",
         "items": {
          "type": "integer"
         }
        },
        "data": {
         "type": "array",
         "items": {}
        }
       }
      }
     }
    }
   }
  }
 }
}
"""#
}
